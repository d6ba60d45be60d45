/* Leak checks inside a Criterion test. Criterion runs each test in a forked worker and does not
 * look at how that worker exits, so LeakSanitizer's report at exit fails nothing: a test that
 * is about ownership calls eg_assert_no_leaks() at its end, which runs LeakSanitizer then and
 * fails the test when anything allocated is no longer reachable. Without ASan it is a no-op. */
#ifndef ENGAGE_TEST_LEAKCHECK_H
#define ENGAGE_TEST_LEAKCHECK_H

#if defined(__SANITIZE_ADDRESS__)
#define EG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EG_TEST_ASAN 1
#endif
#endif

#ifdef EG_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#define eg_assert_no_leaks()                                                                       \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,                                            \
                 "LeakSanitizer found unreachable memory (report above)")
#else
#define eg_assert_no_leaks() ((void)0)
#endif

#endif
