/* The write path's cache of names known to be in a database's catalogue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nameset.h"

static void test_remembers_what_was_added(void **state)
{
	(void)state;
	NameSet *s = nameset_new(1000);
	const char *names[] = {"a", "ab", "foo.web.requests", "café.requests", "x\"y"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_false(nameset_has(s, names[i], strlen(names[i])));
		nameset_add(s, names[i], strlen(names[i]));
		nameset_add(s, names[i], strlen(names[i])); /* twice is once */
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_true(nameset_has(s, names[i], strlen(names[i])));
	assert_false(nameset_has(s, "abc", 3));
	assert_false(nameset_has(s, "foo.web.requests", 3)); /* by bytes and length: "foo" */
	nameset_free(s);
}

static void test_grows_past_its_first_table(void **state)
{
	(void)state;
	NameSet *s = nameset_new(100000);
	char name[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "metric.%d", i);
		nameset_add(s, name, strlen(name));
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "metric.%d", i);
		if (!nameset_has(s, name, strlen(name)))
			fail_msg("lost %s", name);
	}
	assert_false(nameset_has(s, "metric.20000", 12));
	nameset_free(s);
}

/* Bounded: one name past the bound starts afresh (forgetting only costs a redundant insert). */
static void test_bounded(void **state)
{
	(void)state;
	NameSet *s = nameset_new(3);
	nameset_add(s, "a", 1);
	nameset_add(s, "b", 1);
	nameset_add(s, "c", 1);
	assert_true(nameset_has(s, "a", 1) && nameset_has(s, "c", 1));
	nameset_add(s, "d", 1);
	assert_true(nameset_has(s, "d", 1));
	assert_false(nameset_has(s, "a", 1));
	assert_false(nameset_has(s, "c", 1));
	nameset_clear(s);
	assert_false(nameset_has(s, "d", 1));
	nameset_add(s, "e", 1);
	assert_true(nameset_has(s, "e", 1));
	nameset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remembers_what_was_added),
		cmocka_unit_test(test_grows_past_its_first_table),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
