//! What a runner entry's `[runners.kubernetes]` does to the job Pod, keyword by keyword, as
//! the official executor documents it: labels and annotations, scheduling (node selector,
//! tolerations, scheduler, priority and runtime classes, DNS, host aliases), the service
//! account and image pull secrets, security contexts and capabilities, resources, the pull
//! policy and the termination grace period. `pod::pod` applies these to the Pod it builds.

use std::collections::BTreeMap;

use flotilla_config::kubernetes::containers::LifecycleHandler;
use flotilla_config::kubernetes::resources::ResourceBounds;
use flotilla_config::kubernetes::scheduling::{Toleration, TolerationOperator};
use flotilla_config::kubernetes::security::{
    ContainerSecurityContext, PodSecurityContext as PodSecurityConfig, ProcMount, Profile,
};
use flotilla_config::{ContainerKind, KubernetesConfig};
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ExecAction, HTTPGetAction, HTTPHeader, HostAlias, Lifecycle,
    LifecycleHandler as PodLifecycleHandler, LocalObjectReference, PodDNSConfig, PodDNSConfigOption,
    PodSecurityContext, ResourceRequirements, SELinuxOptions, SeccompProfile, SecurityContext, TCPSocketAction,
    Toleration as PodToleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Capabilities the official runner drops from every container unless `cap_add` names them.
pub const DEFAULT_CAP_DROP: &[&str] = &["NET_RAW"];

/// The capabilities of every container: `cap_drop` wins over `cap_add`, which wins over the
/// default drop list.
pub fn capabilities(kube: &KubernetesConfig) -> Capabilities {
    let add: Vec<String> = kube
        .cap_add
        .iter()
        .filter(|cap| !kube.cap_drop.contains(cap))
        .cloned()
        .collect();
    let mut drop: Vec<String> = kube.cap_drop.clone();
    for cap in DEFAULT_CAP_DROP {
        let cap = cap.to_string();
        if !kube.cap_add.contains(&cap) && !drop.contains(&cap) {
            drop.push(cap);
        }
    }
    Capabilities {
        add: (!add.is_empty()).then_some(add),
        drop: (!drop.is_empty()).then_some(drop),
    }
}

/// A container's security context: the global `privileged`, `allow_privilege_escalation` and
/// capabilities, then its own `*_container_security_context` on top. Its `capabilities.add`
/// replaces the global add list and its `drop` the global drop list (with the default
/// `NET_RAW`), each on its own, as in the official runner: setting only `add` keeps the drops.
pub fn container_security(kube: &KubernetesConfig, own: &ContainerSecurityContext) -> SecurityContext {
    let mut capabilities = capabilities(kube);
    if let Some(caps) = &own.capabilities {
        if !caps.add.is_empty() {
            capabilities.add = Some(caps.add.clone());
        }
        if !caps.drop.is_empty() {
            capabilities.drop = Some(caps.drop.clone());
        }
    }
    SecurityContext {
        capabilities: Some(capabilities),
        privileged: own.privileged.or(kube.privileged),
        allow_privilege_escalation: own.allow_privilege_escalation.or(kube.allow_privilege_escalation),
        run_as_user: own.run_as_user,
        run_as_group: own.run_as_group,
        run_as_non_root: own.run_as_non_root,
        read_only_root_filesystem: own.read_only_root_filesystem,
        se_linux_options: own.selinux_type.as_ref().map(|kind| SELinuxOptions {
            type_: Some(kind.clone()),
            ..Default::default()
        }),
        proc_mount: own.proc_mount.map(|mount| {
            match mount {
                ProcMount::Default => "Default",
                ProcMount::Unmasked => "Unmasked",
            }
            .to_string()
        }),
        seccomp_profile: own.seccomp_profile.as_ref().map(seccomp),
        app_armor_profile: own.app_armor_profile.as_ref().map(app_armor),
        ..Default::default()
    }
}

fn seccomp(profile: &Profile) -> SeccompProfile {
    SeccompProfile {
        type_: profile.profile_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
        localhost_profile: profile.localhost_profile.clone(),
    }
}

fn app_armor(profile: &Profile) -> AppArmorProfile {
    AppArmorProfile {
        type_: profile.profile_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
        localhost_profile: profile.localhost_profile.clone(),
    }
}

/// A valid label value made of any text, as the official runner sanitizes labels: characters
/// other than `[A-Za-z0-9-_.]` become `_`, at most 63 of them, starting and ending with a
/// letter or digit.
pub fn label_value(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    replaced.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// `pod_security_context`, or None when nothing of it is set.
pub fn pod_security(config: &PodSecurityConfig) -> Option<PodSecurityContext> {
    let context = PodSecurityContext {
        fs_group: config.fs_group,
        run_as_group: config.run_as_group,
        run_as_non_root: config.run_as_non_root,
        run_as_user: config.run_as_user,
        supplemental_groups: (!config.supplemental_groups.is_empty()).then(|| config.supplemental_groups.clone()),
        se_linux_options: config.selinux_type.as_ref().map(|kind| SELinuxOptions {
            type_: Some(kind.clone()),
            ..Default::default()
        }),
        seccomp_profile: config.seccomp_profile.as_ref().map(seccomp),
        app_armor_profile: config.app_armor_profile.as_ref().map(app_armor),
        ..Default::default()
    };
    (context != PodSecurityContext::default()).then_some(context)
}

/// The requests and limits of one kind of container, or None when none is configured.
pub fn resources(kube: &KubernetesConfig, kind: ContainerKind) -> Option<ResourceRequirements> {
    let configured = kube.resources(kind);
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let mut put = |name: &str, bounds: &ResourceBounds| {
        if let Some(request) = &bounds.request {
            requests.insert(name.to_string(), Quantity(request.to_string()));
        }
        if let Some(limit) = &bounds.limit {
            limits.insert(name.to_string(), Quantity(limit.to_string()));
        }
    };
    put("cpu", &configured.cpu);
    put("memory", &configured.memory);
    put("ephemeral-storage", &configured.ephemeral_storage);
    (!requests.is_empty() || !limits.is_empty()).then(|| ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    })
}

/// `node_tolerations` (`"key=value" = "Effect"`, `"key"` for any value, `""` for every effect).
pub fn tolerations(kube: &KubernetesConfig) -> Option<Vec<PodToleration>> {
    let tolerations: Vec<PodToleration> = kube
        .node_tolerations
        .iter()
        // The loader has refused malformed entries already.
        .filter_map(|(entry, effect)| Toleration::parse(entry, *effect).ok())
        .map(|toleration| PodToleration {
            key: Some(toleration.key),
            operator: Some(
                match toleration.operator {
                    TolerationOperator::Equal => "Equal",
                    TolerationOperator::Exists => "Exists",
                }
                .into(),
            ),
            value: toleration.value,
            effect: toleration.effect.map(|effect| effect.as_str().to_string()),
            ..Default::default()
        })
        .collect();
    (!tolerations.is_empty()).then_some(tolerations)
}

pub fn host_aliases(kube: &KubernetesConfig) -> Option<Vec<HostAlias>> {
    let aliases: Vec<HostAlias> = kube
        .host_aliases
        .iter()
        .map(|alias| HostAlias {
            ip: alias.ip.clone(),
            hostnames: Some(alias.hostnames.clone()),
        })
        .collect();
    (!aliases.is_empty()).then_some(aliases)
}

pub fn dns_config(kube: &KubernetesConfig) -> Option<PodDNSConfig> {
    let dns = &kube.dns_config;
    if dns.nameservers.is_empty() && dns.options.is_empty() && dns.searches.is_empty() {
        return None;
    }
    Some(PodDNSConfig {
        nameservers: (!dns.nameservers.is_empty()).then(|| dns.nameservers.clone()),
        options: (!dns.options.is_empty()).then(|| {
            dns.options
                .iter()
                .map(|option| PodDNSConfigOption {
                    name: Some(option.name.clone()),
                    value: option.value.clone(),
                })
                .collect()
        }),
        searches: (!dns.searches.is_empty()).then(|| dns.searches.clone()),
    })
}

pub fn image_pull_secrets(kube: &KubernetesConfig) -> Option<Vec<LocalObjectReference>> {
    if kube.use_service_account_image_pull_secrets || kube.image_pull_secrets.is_empty() {
        return None;
    }
    Some(
        kube.image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect(),
    )
}

/// `container_lifecycle` (`post_start` / `pre_stop` with `exec`, `http_get` or `tcp_socket`),
/// for the build, helper and service containers.
pub fn lifecycle(kube: &KubernetesConfig) -> Option<Lifecycle> {
    let handler = |handler: &Option<LifecycleHandler>| {
        handler.as_ref().map(|h| PodLifecycleHandler {
            exec: h.exec.as_ref().map(|exec| ExecAction {
                command: Some(exec.command.clone()),
            }),
            http_get: h.http_get.as_ref().map(|get| HTTPGetAction {
                host: get.host.clone(),
                path: Some(get.path.clone()),
                port: IntOrString::Int(get.port as i32),
                scheme: get.scheme.clone(),
                http_headers: (!get.http_headers.is_empty()).then(|| {
                    get.http_headers
                        .iter()
                        .map(|header| HTTPHeader {
                            name: header.name.clone(),
                            value: header.value.clone(),
                        })
                        .collect()
                }),
            }),
            tcp_socket: h.tcp_socket.as_ref().map(|tcp| TCPSocketAction {
                host: tcp.host.clone(),
                port: IntOrString::Int(tcp.port as i32),
            }),
            ..Default::default()
        })
    };
    let lifecycle = Lifecycle {
        post_start: handler(&kube.container_lifecycle.post_start),
        pre_stop: handler(&kube.container_lifecycle.pre_stop),
        ..Default::default()
    };
    (lifecycle != Lifecycle::default()).then_some(lifecycle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::kube;

    #[test]
    fn net_raw_is_dropped_by_default_and_cap_drop_beats_cap_add() {
        let caps = capabilities(&kube(""));
        assert_eq!((caps.add, caps.drop), (None, Some(vec!["NET_RAW".to_string()])));
        let caps = capabilities(&kube(
            "cap_add = [\"NET_RAW\", \"SYS_TIME\"]\ncap_drop = [\"SYS_TIME\"]",
        ));
        assert_eq!(
            caps.add,
            Some(vec!["NET_RAW".to_string()]),
            "cap_add wins over the default drop"
        );
        assert_eq!(
            caps.drop,
            Some(vec!["SYS_TIME".to_string()]),
            "cap_drop wins over cap_add"
        );
    }

    #[test]
    fn a_container_context_goes_over_the_global_settings() {
        let config = kube("privileged = true\n[runners.kubernetes.build_container_security_context]\nrun_as_user = 1000\n[runners.kubernetes.build_container_security_context.capabilities]\nadd = [\"NET_ADMIN\"]");
        let context = container_security(&config, &config.build_container_security_context);
        assert_eq!(context.privileged, Some(true));
        assert_eq!(context.run_as_user, Some(1000));
        let caps = context.capabilities.unwrap();
        assert_eq!(
            (caps.add, caps.drop),
            (Some(vec!["NET_ADMIN".to_string()]), Some(vec!["NET_RAW".to_string()]))
        );
        let helper = container_security(&config, &config.helper_container_security_context);
        assert_eq!(helper.capabilities.unwrap().drop, Some(vec!["NET_RAW".to_string()]));
    }

    #[test]
    fn resources_tolerations_and_scheduling() {
        let config = kube(
            "cpu_request = \"500m\"\nmemory_limit = \"1Gi\"\nhelper_cpu_limit = \"200m\"\nimage_pull_secrets = [\"regcred\"]\npull_policy = [\"if-not-present\", \"always\"]\n[runners.kubernetes.node_tolerations]\n\"gpu=true\" = \"NoSchedule\"\n\"spot\" = \"\"\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.7\"\nhostnames = [\"registry.local\"]",
        );
        let build = resources(&config, ContainerKind::Build).unwrap();
        assert_eq!(build.requests.unwrap()["cpu"].0, "500m");
        assert_eq!(build.limits.unwrap()["memory"].0, "1Gi");
        assert_eq!(
            resources(&config, ContainerKind::Helper).unwrap().limits.unwrap()["cpu"].0,
            "200m"
        );
        assert!(resources(&config, ContainerKind::Service).is_none());
        let tolerations = serde_json::to_value(tolerations(&config).unwrap()).unwrap();
        assert_eq!(
            tolerations,
            serde_json::json!([
                {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
                {"key": "spot", "operator": "Exists"}
            ])
        );
        assert_eq!(image_pull_secrets(&config).unwrap()[0].name, "regcred");
        assert_eq!(host_aliases(&config).unwrap()[0].ip, "10.0.0.7");
        assert!(dns_config(&config).is_none() && pod_security(&config.pod_security_context).is_none());
    }

    #[test]
    fn label_values_are_made_valid() {
        assert_eq!(label_value("feature/login page"), "feature_login_page");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(70)).len(), 63);
        assert_eq!(label_value("v1.2_3"), "v1.2_3");
    }

    #[test]
    fn a_containers_add_or_drop_replaces_only_that_list() {
        let config = kube("cap_add = [\"SYS_TIME\"]\n[runners.kubernetes.build_container_security_context.capabilities]\nadd = [\"NET_ADMIN\"]");
        let caps = container_security(&config, &config.build_container_security_context)
            .capabilities
            .unwrap();
        assert_eq!(
            (caps.add, caps.drop),
            (Some(vec!["NET_ADMIN".to_string()]), Some(vec!["NET_RAW".to_string()]))
        );
        let config = kube("cap_add = [\"SYS_TIME\"]\n[runners.kubernetes.build_container_security_context.capabilities]\ndrop = [\"ALL\"]");
        let caps = container_security(&config, &config.build_container_security_context)
            .capabilities
            .unwrap();
        assert_eq!(
            (caps.add, caps.drop),
            (Some(vec!["SYS_TIME".to_string()]), Some(vec!["ALL".to_string()]))
        );
    }

    #[test]
    fn lifecycle_handlers() {
        let config = kube("[runners.kubernetes.container_lifecycle.pre_stop.exec]\ncommand = [\"sh\", \"-c\", \"sleep 1\"]\n[runners.kubernetes.container_lifecycle.post_start.tcp_socket]\nport = 8080");
        let value = serde_json::to_value(lifecycle(&config).unwrap()).unwrap();
        assert_eq!(
            value["preStop"]["exec"]["command"],
            serde_json::json!(["sh", "-c", "sleep 1"])
        );
        assert_eq!(value["postStart"]["tcpSocket"]["port"], 8080);
        assert!(lifecycle(&kube("")).is_none());
    }
}
