/*
 * ctest.h: the smallest test harness.  CHECK counts a pass or records a
 * failure with its file and line (and errno, often the clue) and goes on;
 * ctest_done() prints the closing line and gives main()'s exit status.
 */
#ifndef CTEST_H
#define CTEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int ctest_passed;
static int ctest_failed;

/* errno is read right after `cond`, so a failed call inside it shows. */
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            ctest_passed++;                                                  \
        }                                                                    \
        else {                                                               \
            int ctest_errno_ = errno;                                        \
            ctest_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d: %s)\n",      \
                    __FILE__, __LINE__, #cond, ctest_errno_,                 \
                    strerror(ctest_errno_));                                 \
        }                                                                    \
    } while (0)

static int
ctest_done(const char *name)
{
    fflush(stdout);
    printf("%s: %d passed, %d failed\n", name, ctest_passed, ctest_failed);
    return ctest_failed ? 1 : 0;
}

#endif /* CTEST_H */
