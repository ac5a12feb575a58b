// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>

static char *ifname = "eth0";
module_param(ifname, charp, 0444);
MODULE_PARM_DESC(ifname, "interface that gets an empty ndo_poll_controller");

static struct net_device *shim_dev;
static const struct net_device_ops *orig_ops;
static struct net_device_ops shim_ops;

static void np_shim_poll_controller(struct net_device *dev)
{
	/* Empty on purpose: netpoll then polls the NAPI contexts already scheduled. */
}

static int __init np_shim_init(void)
{
	struct net_device *dev;

	rtnl_lock();
	dev = __dev_get_by_name(&init_net, ifname);
	if (!dev) {
		rtnl_unlock();
		pr_err("np_shim: %s not found\n", ifname);
		return -ENODEV;
	}
	if (dev->netdev_ops->ndo_poll_controller) {
		rtnl_unlock();
		pr_info("np_shim: %s already has ndo_poll_controller\n", ifname);
		return -EEXIST;
	}
	dev_hold(dev);
	orig_ops = dev->netdev_ops;
	shim_ops = *orig_ops;
	shim_ops.ndo_poll_controller = np_shim_poll_controller;
	WRITE_ONCE(dev->netdev_ops, &shim_ops);
	shim_dev = dev;
	rtnl_unlock();
	pr_info("np_shim: %s has an empty ndo_poll_controller now\n", ifname);
	return 0;
}

static void __exit np_shim_exit(void)
{
	rtnl_lock();
	WRITE_ONCE(shim_dev->netdev_ops, orig_ops);
	rtnl_unlock();
	synchronize_net();
	dev_put(shim_dev);
}

module_init(np_shim_init);
module_exit(np_shim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Give one net_device an empty ndo_poll_controller for netpoll");
