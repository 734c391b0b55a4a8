//! Where the job Pod may run and how it resolves names: `node_tolerations`, `dns_policy`,
//! `dns_config` and `host_aliases` of `[runners.kubernetes]` (affinity is in `affinity`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use crate::de::keyword_enum;
use crate::path::KeyPath;
use crate::validate::{Validate, Validator};

keyword_enum! {
    /// `dns_policy`, spelled as the runner documentation spells it.
    pub enum DnsPolicy {
        None = "none",
        Default = "default",
        ClusterFirst = "cluster-first",
        ClusterFirstWithHostNet = "cluster-first-with-host-net",
    }
}

impl DnsPolicy {
    /// The Pod spec's spelling (`ClusterFirstWithHostNet`).
    pub fn as_kubernetes(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Default => "Default",
            Self::ClusterFirst => "ClusterFirst",
            Self::ClusterFirstWithHostNet => "ClusterFirstWithHostNet",
        }
    }
}

keyword_enum! {
    /// A taint effect a toleration matches.
    pub enum TaintEffect {
        NoSchedule = "NoSchedule",
        PreferNoSchedule = "PreferNoSchedule",
        NoExecute = "NoExecute",
    }
}

/// The value side of `node_tolerations`: an effect, or `""` for every effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TolerationEffect(pub Option<TaintEffect>);

impl<'de> Deserialize<'de> for TolerationEffect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(Self(None));
        }
        text.parse()
            .map(|effect| Self(Some(effect)))
            .map_err(|reason| serde::de::Error::custom(format!("{reason} (or \"\" for every effect)")))
    }
}

impl Serialize for TolerationEffect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.map(TaintEffect::as_str).unwrap_or(""))
    }
}

/// How a toleration compares the taint's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TolerationOperator {
    /// `"key=value"` (or `"key="`): the taint's value must equal `value`.
    Equal,
    /// `"key"`: any taint with that key.
    Exists,
}

/// One entry of `node_tolerations` (`"key=value" = "Effect"`), as the Pod spec wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub operator: TolerationOperator,
    /// The value for [`TolerationOperator::Equal`] (possibly empty); `None` for `Exists`.
    pub value: Option<String>,
    /// `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Reads a `node_tolerations` entry: `"key=value"`, `"key="` (empty value) or `"key"` (any value).
    pub fn parse(entry: &str, effect: TolerationEffect) -> Result<Self, String> {
        let (key, value) = match entry.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (entry, None),
        };
        if key.is_empty() {
            return Err(format!("toleration {entry:?} has an empty key"));
        }
        if value.is_some_and(|value| value.contains('=')) {
            return Err(format!(
                "toleration {entry:?} has more than one '=' (write \"key=value\" = \"Effect\")"
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            operator: if value.is_some() {
                TolerationOperator::Equal
            } else {
                TolerationOperator::Exists
            },
            value: value.map(str::to_owned),
            effect: effect.0,
        })
    }
}

/// Checks every `node_tolerations` entry; each malformed one is its own error.
pub(crate) fn validate_tolerations(
    tolerations: &BTreeMap<String, TolerationEffect>,
    path: &KeyPath,
    validator: &mut Validator,
) {
    for (entry, effect) in tolerations {
        let entry_path = path.key(entry.clone());
        match Toleration::parse(entry, *effect) {
            Err(reason) => validator.error(&entry_path, reason),
            Ok(toleration) => {
                validator.check_qualified_name(&entry_path, &toleration.key);
                if let Some(value) = &toleration.value {
                    validator.check_label_value(&entry_path, value);
                }
            }
        }
    }
}

/// `[runners.kubernetes.dns_config]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsConfig {
    /// DNS server IP addresses (at most 3).
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Resolver options (`ndots`, `edns0`, …).
    #[serde(default)]
    pub options: Vec<DnsConfigOption>,
    /// Search domains (at most 32).
    #[serde(default)]
    pub searches: Vec<String>,
}

impl DnsConfig {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.options.is_empty() && self.searches.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsConfigOption {
    /// Required.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

impl Validate for DnsConfig {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        for (index, nameserver) in self.nameservers.iter().enumerate() {
            if nameserver.parse::<IpAddr>().is_err() {
                validator.error(
                    &path.key("nameservers").index(index),
                    format!("{nameserver:?} is not an IP address"),
                );
            }
        }
        if self.nameservers.len() > 3 {
            validator.error(&path.key("nameservers"), "Kubernetes allows at most 3 nameservers");
        }
        if self.searches.len() > 32 {
            validator.error(&path.key("searches"), "Kubernetes allows at most 32 search domains");
        }
        for (index, option) in self.options.iter().enumerate() {
            validator.require(&path.key("options").index(index).key("name"), &option.name);
        }
    }
}

/// `[[runners.kubernetes.host_aliases]]`: extra `/etc/hosts` entries in every container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostAlias {
    /// The address (required).
    #[serde(default)]
    pub ip: String,
    /// Names for it (at least one).
    #[serde(default)]
    pub hostnames: Vec<String>,
}

impl Validate for HostAlias {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if validator.require(&path.key("ip"), &self.ip) && self.ip.parse::<IpAddr>().is_err() {
            validator.error(&path.key("ip"), format!("{:?} is not an IP address", self.ip));
        }
        if self.hostnames.is_empty() {
            validator.error(&path.key("hostnames"), "needs at least one host name");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(text: &str) -> TolerationEffect {
        toml::from_str::<BTreeMap<String, TolerationEffect>>(&format!("e = {text:?}")).unwrap()["e"]
    }

    #[test]
    fn toleration_forms_of_the_documentation() {
        let master = Toleration::parse("node-role.kubernetes.io/master", effect("NoSchedule")).unwrap();
        assert_eq!(master.operator, TolerationOperator::Exists);
        assert_eq!(master.value, None);
        assert_eq!(master.effect, Some(TaintEffect::NoSchedule));
        let custom = Toleration::parse("custom.toleration=value", effect("NoSchedule")).unwrap();
        assert_eq!(
            (custom.key.as_str(), custom.operator, custom.value.as_deref()),
            ("custom.toleration", TolerationOperator::Equal, Some("value"))
        );
        let empty_value = Toleration::parse("empty.value=", effect("PreferNoSchedule")).unwrap();
        assert_eq!(
            (empty_value.operator, empty_value.value.as_deref()),
            (TolerationOperator::Equal, Some(""))
        );
        let only_key = Toleration::parse("onlyKey", effect("")).unwrap();
        assert_eq!((only_key.operator, only_key.effect), (TolerationOperator::Exists, None));
    }

    #[test]
    fn malformed_tolerations_are_refused() {
        assert!(Toleration::parse("=value", TolerationEffect(None))
            .unwrap_err()
            .contains("empty key"));
        assert!(Toleration::parse("a=b=c", TolerationEffect(None))
            .unwrap_err()
            .contains("more than one '='"));
        let error = toml::from_str::<BTreeMap<String, TolerationEffect>>("a = \"Sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "\"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute (or \"\" for every effect)"
            ),
            "{error}"
        );
        let mut validator = Validator::default();
        let tolerations: BTreeMap<String, TolerationEffect> =
            toml::from_str("\"=v\" = \"NoSchedule\"\n\"bad key!\" = \"\"\n\"k=bad value\" = \"\"").unwrap();
        validate_tolerations(&tolerations, &KeyPath::root().key("node_tolerations"), &mut validator);
        let errors: Vec<String> = validator.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("node_tolerations.\"=v\": toleration \"=v\" has an empty key"),
            "{errors:?}"
        );
    }

    #[test]
    fn dns_policy_spellings() {
        assert_eq!(
            "cluster-first-with-host-net"
                .parse::<DnsPolicy>()
                .unwrap()
                .as_kubernetes(),
            "ClusterFirstWithHostNet"
        );
        assert_eq!(
            "sometimes".parse::<DnsPolicy>().unwrap_err(),
            "\"sometimes\" is not one of none, default, cluster-first, cluster-first-with-host-net"
        );
    }

    #[test]
    fn dns_config_and_host_aliases_are_checked() {
        let dns: DnsConfig =
            toml::from_str("nameservers = [\"1.2.3.4\", \"dns.local\"]\n[[options]]\nvalue = \"2\"").unwrap();
        let mut validator = Validator::default();
        dns.validate(&KeyPath::root().key("dns_config"), &mut validator);
        let alias: HostAlias = toml::from_str("ip = \"300.1.1.1\"").unwrap();
        alias.validate(&KeyPath::root().key("host_aliases").index(0), &mut validator);
        let errors: Vec<String> = validator.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "dns_config.nameservers[1]: \"dns.local\" is not an IP address",
                "dns_config.options[0].name: is required",
                "host_aliases[0].ip: \"300.1.1.1\" is not an IP address",
                "host_aliases[0].hostnames: needs at least one host name",
            ]
        );
    }
}
