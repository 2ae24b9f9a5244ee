//! Configuration: from YAML text to the configured nodes of a pipeline.
//!
//! Reading goes in steps, and each step reports every problem it finds before the
//! next one runs: the YAML is indexed for line numbers (`base::spans`) and parsed; the
//! top level is read as one of two forms, the pipeline form ([`pipeline`]) or the
//! service-centric form ([`service`]), which expands into the same nodes; each node's
//! options are decoded by its component's config type. Every error names the file,
//! line, column and key path (`base::diagnostics`). Checking the graph and building the
//! components is the floor above's job (`pipeline::load`).

pub mod names;
pub mod pipeline;
pub mod service;

use std::path::{Path, PathBuf};

use serde_norway::Value;

use self::pipeline::{PipelineConfig, describe};
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::key_path::KeyPath;
use crate::base::spans::{Mark, SpanIndex};
use crate::base::text::list;

/// The absolute folder of the configuration `file`: what relative paths in it start
/// from, whatever the folder Aegis was started in.
///
/// `aegis run aegis.yaml` names a file whose parent is the empty path; taken as it is,
/// a relative glob `*.log` would become `/*.log`. The folder is made absolute and its
/// symbolic links resolved, so that `..` in a configured path means what it means to
/// the kernel; if that fails (the folder vanished), the absolute path as written does.
pub fn folder_of(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let folder = absolute.parent().unwrap_or(Path::new("/"));
    std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// Parses `text` and decodes whichever form it is in; `None` if the file is not even
/// shaped like a configuration (its errors are in `diag` either way).
pub fn parse(text: &str, spans: &SpanIndex, diag: &mut Diagnostics) -> Option<PipelineConfig> {
    // Checked first: serde's YAML loader is slow on what the index refuses.
    if let Some(refusal) = spans.refusal() {
        diag.error_at_mark(refusal.mark(), &KeyPath::root(), refusal.to_string());
        return None;
    }
    // The YAML parser would stop at the first repeated key; report them all, each with
    // the place of the first one.
    for (path, again, first) in spans.duplicates() {
        diag.error_at_mark(
            *again,
            path,
            format!(
                "key given twice (first at line {}); each key may appear once",
                first.line
            ),
        );
    }
    if spans.duplicates().next().is_some() {
        return None;
    }
    let top: Value = match serde_norway::from_str(text) {
        Ok(top) => top,
        Err(err) => {
            let mark = err
                .location()
                .map_or(Mark { line: 1, column: 1 }, |at| Mark {
                    line: at.line(),
                    column: at.column(),
                });
            diag.error_at_mark(
                mark,
                &KeyPath::root(),
                format!("not valid YAML: {}", strip_location(&err.to_string())),
            );
            return None;
        }
    };
    let needs = "a configuration needs `services:` or `logs:` (the service-centric form), or `sources:` and `sinks:` (the pipeline form)";
    let top = match top {
        Value::Mapping(top) => top,
        Value::Null => {
            let message =
                format!("the file holds no settings (it is empty, or only comments); {needs}");
            diag.error(&KeyPath::root(), message);
            return None;
        }
        other => {
            diag.error(
                &KeyPath::root(),
                format!("the file holds {}; {needs}", describe(&other)),
            );
            return None;
        }
    };
    let known: Vec<&str> = pipeline::SECTIONS
        .iter()
        .chain(&service::SECTIONS)
        .copied()
        .collect();
    let mut pipeline_keys = Vec::new();
    let mut service_keys = Vec::new();
    for key in top.keys() {
        let Some(key) = key.as_str() else {
            diag.error(
                &KeyPath::root(),
                format!("top-level keys must be strings, found {}", describe(key)),
            );
            continue;
        };
        if pipeline::SECTIONS.contains(&key) {
            pipeline_keys.push(key);
        } else if service::SECTIONS.contains(&key) {
            service_keys.push(key);
        } else {
            let mut message = format!("unknown key `{key}`; expected one of {}", list(&known));
            if let Some(close) = closest(key, known.iter().copied()) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            diag.error_at_key(&KeyPath::root().key(key), message);
        }
    }
    if let (Some(first), false) = (pipeline_keys.first(), service_keys.is_empty()) {
        let message = format!(
            "`{first}` belongs to the pipeline form, but this file also has {} of the service-centric form; use one form per file",
            list(&service_keys)
        );
        diag.error_at_key(&KeyPath::root().key(*first), message);
        return None;
    }
    let config = if pipeline_keys.is_empty() {
        service::expand(&top, diag)
    } else {
        pipeline::decode(&top, diag)
    };
    // Returned even with errors: building its components may find more of them.
    Some(config)
}

/// serde_norway appends " at line L column C" to messages; the diagnostic has its own.
fn strip_location(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let spans = SpanIndex::build(text);
        let mut diag = Diagnostics::new(&spans);
        parse(text, &spans, &mut diag);
        let (errors, _) = diag.finish();
        errors
            .iter()
            .map(|e| e.display(Path::new("c.yaml")).to_string())
            .collect()
    }

    #[test]
    fn every_error_of_a_file_is_reported_together() {
        let text = "\
logs:
  files:
    - service: a
      path: /a.log
      colour: red
    - service: b
  patterns:
    - name: x
      pattern: y
      severity: fatal
    - name: z
      pattern: w
      severty: INFO
";
        assert_eq!(
            errors(text),
            [
                "c.yaml:5:7: logs.files[0].colour: unknown key `colour`; expected one of `service`, `path`, `read_from`, `patterns`, `requests`, `signals`",
                "c.yaml:6:7: logs.files[1]: missing key `path`",
                "c.yaml:10:17: logs.patterns[0].severity: unknown severity `fatal`; expected one of `CRITICAL`, `WARNING`, `INFO` (any case)",
                "c.yaml:11:7: logs.patterns[1]: missing key `severity`",
                "c.yaml:13:7: logs.patterns[1].severty: unknown key `severty`; expected one of `name`, `pattern`, `severity`, `description` (did you mean `severity`?)",
            ]
        );
    }

    #[test]
    fn forms_are_not_mixed_and_top_level_typos_are_caught() {
        assert_eq!(
            errors("logs: {files: []}\nsinks: {}\n"),
            [
                "c.yaml:2:1: sinks: `sinks` belongs to the pipeline form, but this file also has `logs` of the service-centric form; use one form per file"
            ]
        );
        assert!(errors("log: {}\n")[0].contains("unknown key `log`; expected one of `sources`, `stages`, `sinks`, `logs`, `services`, `anomaly_detection`, `alerting`, `prometheus`, `console` (did you mean `logs`?)"));
        assert!(errors("")[0].starts_with("c.yaml:1:1: the file holds no settings"));
        assert!(errors("- a\n")[0].starts_with(
            "c.yaml:1:1: the file holds a list; a configuration needs `services:` or `logs:`"
        ));
        assert!(errors("logs: [a\n")[0].starts_with("c.yaml:2:1: not valid YAML: "));
    }
}
