//! A job's variables where the settings of its Pod may use them: the job image and services
//! (`image: $CI_REGISTRY_IMAGE/builder`), `helper_image`, `pod_labels` and `pod_annotations`
//! values, volume mount paths and claim names, and the `KUBERNETES_*` overwrites
//! (`KUBERNETES_NAMESPACE_OVERWRITE: ci-${CI_COMMIT_REF_SLUG}`), as the official runner expands
//! them. Each variable's own value is first expanded once against the others (unless `raw`);
//! a file variable stands for the path the helper writes it to; the last of a repeated key wins.

use std::collections::HashMap;

use flotilla_gitlab::types::JobVariable;

/// The job's variables, each expanded once.
#[derive(Debug, Clone, Default)]
pub struct JobVariables {
    values: HashMap<String, String>,
}

impl JobVariables {
    /// `tmp_dir`: where the helper writes file variables (their value is that file's path).
    pub fn new(variables: &[JobVariable], tmp_dir: &str) -> JobVariables {
        let as_referenced = |v: &JobVariable| {
            if v.file {
                format!("{tmp_dir}/{}", v.key)
            } else {
                v.value.clone()
            }
        };
        let unexpanded: HashMap<&str, String> = variables.iter().map(|v| (v.key.as_str(), as_referenced(v))).collect();
        let get = |name: &str| lookup(&unexpanded, name);
        let values = variables
            .iter()
            .map(|v| {
                let value = if v.raw || v.file {
                    as_referenced(v)
                } else {
                    flotilla_expand::expand(&v.value, &get)
                };
                (v.key.clone(), value)
            })
            .collect();
        JobVariables { values }
    }

    /// `text` with the job's `$VAR`/`${VAR}` replaced.
    pub fn expand(&self, text: &str) -> String {
        if !text.contains('$') {
            return text.to_string();
        }
        flotilla_expand::expand(text, &|name| lookup(&self.values, name))
    }

    /// The variables with their expanded values (what the overwrites read).
    pub fn expanded(&self, variables: &[JobVariable]) -> Vec<JobVariable> {
        variables
            .iter()
            .map(|v| JobVariable {
                value: self.values.get(&v.key).cloned().unwrap_or_default(),
                ..v.clone()
            })
            .collect()
    }
}

fn lookup<K: std::borrow::Borrow<str> + std::hash::Hash + Eq>(values: &HashMap<K, String>, name: &str) -> String {
    match name {
        "$" => "$".to_string(),
        _ => values.get(name).cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(key: &str, value: &str) -> JobVariable {
        JobVariable::public(key, value)
    }

    #[test]
    fn settings_see_the_variables_expanded_once() {
        let mut raw = var("RAW", "$SLUG");
        raw.raw = true;
        let mut file = var("CERT", "----");
        file.file = true;
        let variables = [
            var("CI_COMMIT_REF_SLUG", "main"),
            var("SLUG", "first"),
            var("SLUG", "ci-${CI_COMMIT_REF_SLUG}"),
            raw,
            file,
        ];
        let job = JobVariables::new(&variables, "/flotilla/run/tmp");
        assert_eq!(job.expand("ns-$SLUG"), "ns-ci-main");
        assert_eq!(
            job.expand("$RAW ${CERT} $UNSET. $$5"),
            "$SLUG /flotilla/run/tmp/CERT . $5"
        );
        let expanded = job.expanded(&variables);
        assert_eq!(expanded[2].value, "ci-main");
        assert_eq!(expanded[2].key, "SLUG");
    }
}
