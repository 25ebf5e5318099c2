/* ctest.h: the smallest test harness: CHECK records a failure with its
 * file and line and goes on; ctest_done prints the closing line. */
#ifndef CTEST_H
#define CTEST_H

#include <stdio.h>

static int ctest_passed;
static int ctest_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            ctest_passed++;                                                  \
        }                                                                    \
        else {                                                               \
            ctest_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

static int
ctest_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, ctest_passed, ctest_failed);
    return ctest_failed ? 1 : 0;
}

#endif
