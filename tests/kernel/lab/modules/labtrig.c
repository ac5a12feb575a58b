// SPDX-License-Identifier: GPL-2.0
/*
 * labtrig: kernel reports on demand for the netconsole lab (tests/kernel).
 *
 * insmod labtrig.ko mode=warn_oops [delay_ms=80]
 *   WARN() from the module's init, then delay_ms later a write through a NULL
 *   pointer: a WARNING report followed by an Oops (a panic with panic_on_oops=1).
 * Without `mode` the module loads and does nothing.
 */
#include <linux/bug.h>
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/string.h>

static char *mode = "";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "what to trigger on load: warn_oops (or nothing)");

static uint delay_ms = 80;
module_param(delay_ms, uint, 0444);
MODULE_PARM_DESC(delay_ms, "milliseconds between the WARN and the Oops");

/* noinline: the Oops names this function as where it happened */
static noinline void labtrig_null_write(void)
{
	/* volatile: the store must reach the MMU, whatever the compiler knows of NULL */
	int *volatile p = NULL;

	*p = 0x1ab;
}

static int __init labtrig_init(void)
{
	if (strcmp(mode, "warn_oops") == 0) {
		WARN(1, "labtrig: warning before the oops (delay_ms=%u)\n", delay_ms);
		msleep(delay_ms);
		pr_info("labtrig: writing through a NULL pointer now\n");
		labtrig_null_write();
		return 0;
	}
	if (mode[0]) {
		pr_err("labtrig: unknown mode '%s'\n", mode);
		return -EINVAL;
	}
	return 0;
}

static void __exit labtrig_exit(void)
{
}

module_init(labtrig_init);
module_exit(labtrig_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("netconsole lab: WARN and Oops on demand");
