//! A container's Linux capabilities, as containerd gives them: its default set, all of them
//! when `privileged`, else the default plus `securityContext.capabilities.add` minus `drop`
//! (`ALL` allowed in both; names with or without `CAP_`). kube-sim applies the result as the
//! process's bounding set, so a job sees it in `/proc/self/status` (`CapBnd`, and `CapEff`
//! for root).

use serde_json::Value;

/// Capability names by number (linux/capability.h).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// containerd's default set for a container that asks for nothing.
const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

const ALL: u64 = (1 << NAMES.len()) - 1;

/// The bit of a capability name; None for a name the kernel table lacks.
fn bit(name: &str) -> Option<u64> {
    let name = name.trim_start_matches("CAP_");
    if name == "ALL" {
        return Some(ALL);
    }
    NAMES.iter().position(|n| *n == name).map(|i| 1 << i)
}

fn bits(list: &Value) -> u64 {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(bit)
        .fold(0, |acc, b| acc | b)
}

/// The capability mask of a container with this `securityContext`.
pub fn mask(security_context: &Value) -> u64 {
    if security_context["privileged"].as_bool() == Some(true) {
        return ALL;
    }
    let default = DEFAULT.iter().filter_map(|n| bit(n)).fold(0, |acc, b| acc | b);
    let caps = &security_context["capabilities"];
    (default | bits(&caps["add"])) & !bits(&caps["drop"])
}

/// The capability numbers outside `mask`, up to the kernel's last one.
pub fn outside(mask: u64, last_cap: u32) -> Vec<u32> {
    (0..=last_cap)
        .filter(|cap| *cap >= 64 || mask & (1 << cap) == 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn has(mask: u64, name: &str) -> bool {
        mask & bit(name).unwrap() != 0
    }

    #[test]
    fn the_default_set_with_adds_and_drops() {
        let plain = mask(&json!({}));
        assert!(has(plain, "NET_RAW") && has(plain, "CHOWN") && !has(plain, "SYS_ADMIN"));
        let custom =
            mask(&json!({"capabilities": {"add": ["SYS_TIME", "CAP_IPC_LOCK"], "drop": ["NET_RAW", "SYS_TIME"]}}));
        assert!(has(custom, "IPC_LOCK"), "CAP_ prefix accepted");
        assert!(!has(custom, "NET_RAW"));
        assert!(!has(custom, "SYS_TIME"), "drop wins over add, as in containerd");
        assert_eq!(mask(&json!({"capabilities": {"drop": ["ALL"]}})), 0);
        assert_eq!(
            mask(&json!({"privileged": true, "capabilities": {"drop": ["ALL"]}})),
            ALL
        );
    }

    #[test]
    fn outside_lists_what_to_drop_from_the_bounding_set() {
        let only_chown = bit("CHOWN").unwrap();
        let dropped = outside(only_chown, 40);
        assert_eq!(dropped.len(), 40);
        assert!(!dropped.contains(&0));
    }
}
