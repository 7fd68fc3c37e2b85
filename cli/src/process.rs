//! `slip process`: a template (a file, stdin, or a Template stored in the cluster) and parameter
//! values in; the processed objects out, as `oc process` prints them. Nothing is printed unless
//! the whole template processed: errors go to stderr with a non-zero exit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use slipway_crds::process::{ProcessOptions, ProcessedTemplate, TemplateDocument, parse_template, process};
use slipway_crds::template::Parameter;

/// Templates larger than this are refused before they are read whole.
const MAX_TEMPLATE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    slip process -f template.json -p NAME=web -p REPLICAS=2 | kubectl apply -f -\n  \
    slip process mytemplate NAME=web --parameters\n  \
    cat template.yaml | slip process -f - -o yaml")]
pub struct ProcessArgs {
    /// A stored Template's name and/or parameter values as KEY=VALUE.
    #[arg(value_name = "TEMPLATE|KEY=VALUE")]
    positional: Vec<String>,
    /// The template file (YAML or JSON), or - for standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: Option<PathBuf>,
    /// A parameter value, KEY=VALUE (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A file of KEY=VALUE lines; -p and positional values win over it.
    #[arg(long, value_name = "FILE")]
    param_file: Vec<PathBuf>,
    /// Ignore values for parameters the template does not declare (an error otherwise).
    #[arg(long)]
    ignore_unknown_parameters: bool,
    /// Labels to add to every object, k=v (repeatable, or comma-separated).
    #[arg(short = 'l', long = "labels", value_name = "K=V", value_delimiter = ',')]
    labels: Vec<String>,
    /// Print the template's parameters as a table, and nothing else.
    #[arg(long)]
    parameters: bool,
    /// Print the objects one by one instead of as a List.
    #[arg(long)]
    raw: bool,
    /// Keep OpenShift kinds as they are (by default they become Slipway and Kubernetes kinds).
    #[arg(long)]
    no_translate: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Json)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
    Name,
}

pub fn run(args: ProcessArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (stored_name, assignments) = split_positional(&args.positional)?;
    let (source, document) = match (&args.file, &stored_name) {
        (Some(_), Some(name)) => {
            bail!("give a template file (-f) or a stored template's name ({name}), not both")
        }
        (None, None) => {
            bail!("no template: give -f FILE (or -f - for standard input), or a stored template's name")
        }
        (Some(path), None) => {
            let source = if path.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                path.display().to_string()
            };
            let text = read_limited(path).with_context(|| format!("reading {source}"))?;
            let document = parse_template(&text).with_context(|| source.clone())?;
            (source, document)
        }
        (None, Some(name)) => (format!("template {name}"), fetch_stored(name, namespace)?),
    };

    if args.parameters {
        print!("{}", parameter_table(&document.fields.parameters));
        return Ok(());
    }

    let mut values = BTreeMap::new();
    for file in &args.param_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (key, value) in parse_param_file(&text).with_context(|| file.display().to_string())? {
            values.insert(key, value);
        }
    }
    let given = collect_assignments(args.params.iter().chain(assignments.iter()).map(String::as_str))?;
    for (key, value) in given {
        if values.insert(key.clone(), value).is_some() {
            eprintln!(
                "warning: {key} from --param-file is overridden by the value given on the command line"
            );
        }
    }
    let options = ProcessOptions {
        ignore_unknown_parameters: args.ignore_unknown_parameters,
        translate: !args.no_translate,
        extra_labels: collect_labels(&args.labels)?,
    };
    let processed = process(&document.fields, &values, &options).with_context(|| source.clone())?;
    for translation in &processed.translations {
        eprintln!("translated {translation}");
    }
    print!("{}", render(&processed, args.output, args.raw)?);
    Ok(())
}

/// Positional arguments are the stored template's name (at most one) and KEY=VALUE pairs.
fn split_positional(positional: &[String]) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let mut name = None;
    let mut assignments = Vec::new();
    for arg in positional {
        if arg.contains('=') {
            assignments.push(arg.clone());
        } else if let Some(first) = &name {
            bail!("more than one template name given: {first} and {arg} (parameter values are KEY=VALUE)");
        } else {
            name = Some(arg.clone());
        }
    }
    Ok((name, assignments))
}

fn read_limited(path: &PathBuf) -> anyhow::Result<String> {
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let mut bytes = Vec::new();
    reader.take(MAX_TEMPLATE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        bail!(
            "the template is larger than {} MiB",
            MAX_TEMPLATE_BYTES / (1024 * 1024)
        );
    }
    String::from_utf8(bytes).context("the template is not UTF-8 text")
}

fn fetch_stored(name: &str, namespace: Option<&str>) -> anyhow::Result<TemplateDocument> {
    crate::cluster::block_on(async {
        let (client, namespace) = crate::cluster::client(namespace).await?;
        let api: kube::Api<slipway_crds::Template> = kube::Api::namespaced(client, &namespace);
        let template = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading template {name} in namespace {namespace}"))?
            .with_context(|| format!("template {name} not found in namespace {namespace}"))?;
        Ok(TemplateDocument {
            name: Some(name.to_string()),
            api_version: slipway_crds::API_VERSION.to_string(),
            fields: template.spec,
        })
    })?
}

/// KEY=VALUE assignments; a key given twice is an error.
pub(crate) fn collect_assignments<'a>(
    items: impl Iterator<Item = &'a str>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for item in items {
        let (key, value) = split_assignment(item)?;
        if values.insert(key.to_string(), value.to_string()).is_some() {
            bail!("parameter {key} is given more than once");
        }
    }
    Ok(values)
}

fn split_assignment(item: &str) -> anyhow::Result<(&str, &str)> {
    match item.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => bail!("invalid parameter {item:?}: expected KEY=VALUE"),
    }
}

/// A parameter file: KEY=VALUE lines; blank lines and lines starting with # are skipped.
fn parse_param_file(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let mut values = BTreeMap::new();
    for (number, line) in lines {
        let (key, value) = split_assignment(line).with_context(|| format!("line {}", number + 1))?;
        if values.insert(key.to_string(), value.to_string()).is_some() {
            bail!("line {}: parameter {key} is given more than once", number + 1);
        }
    }
    Ok(values)
}

fn collect_labels(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_string(), value.to_string());
            }
            _ => bail!("invalid label {item:?}: expected KEY=VALUE"),
        }
    }
    Ok(labels)
}

/// The parameters as `oc process --parameters` shows them.
fn parameter_table(parameters: &[Parameter]) -> String {
    let rows: Vec<[String; 4]> = parameters
        .iter()
        .map(|p| {
            let description = p
                .description
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let generator = p.generate.clone().unwrap_or_default();
            let value = if p.generate.is_some() {
                p.from.clone()
            } else {
                p.value.clone()
            };
            [p.name.clone(), description, generator, value.unwrap_or_default()]
        })
        .collect();
    let header = ["NAME", "DESCRIPTION", "GENERATOR", "VALUE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            format!("{}\n", cells.join("   ").trim_end())
        })
        .collect()
}

fn render(processed: &ProcessedTemplate, output: Output, raw: bool) -> anyhow::Result<String> {
    let objects = &processed.objects;
    Ok(match (output, raw) {
        (Output::Name, _) => objects
            .iter()
            .map(|o| format!("{}\n", crate::objects::object_name(o)))
            .collect(),
        (Output::Json, false) => format!("{}\n", serde_json::to_string_pretty(&processed.to_list())?),
        (Output::Yaml, false) => serde_yaml_ng::to_string(&processed.to_list())?,
        (Output::Json, true) => {
            let mut out = String::new();
            for object in objects {
                out.push_str(&serde_json::to_string_pretty(object)?);
                out.push('\n');
            }
            out
        }
        (Output::Yaml, true) => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_yaml_ng::to_string(object)?);
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::object_name;

    #[test]
    fn positional_arguments_are_one_name_and_assignments() {
        let (name, rest) = split_positional(&["app".into(), "A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(name.as_deref(), Some("app"));
        assert_eq!(rest, ["A=1", "B=x=y"]);
        let err = split_positional(&["a".into(), "b".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "more than one template name given: a and b (parameter values are KEY=VALUE)"
        );
    }

    #[test]
    fn assignments_split_on_the_first_equals_and_refuse_duplicates() {
        let values = collect_assignments(["A=1", "B=x=y", "C="].into_iter()).unwrap();
        assert_eq!(values["B"], "x=y");
        assert_eq!(values["C"], "");
        let err = collect_assignments(["A=1", "A=2"].into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "parameter A is given more than once");
        let err = collect_assignments(["=1"].into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "invalid parameter \"=1\": expected KEY=VALUE");
        assert!(collect_assignments(["novalue"].into_iter()).is_err());
    }

    #[test]
    fn param_files_skip_comments_and_name_the_bad_line() {
        let values = parse_param_file("# a comment\n\nA=1\nB = two\n").unwrap();
        assert_eq!(values["A"], "1");
        assert_eq!(values["B"], " two");
        let err = parse_param_file("A=1\nnonsense\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "line 2: invalid parameter \"nonsense\": expected KEY=VALUE"
        );
        let err = parse_param_file("A=1\nA=2\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: parameter A is given more than once");
    }

    #[test]
    fn names_are_kind_group_slash_name() {
        let dc = serde_json::json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "metadata": {"name": "web"}});
        assert_eq!(object_name(&dc), "deploymentconfig.slipway.dev/web");
        let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
        assert_eq!(object_name(&svc), "service/web");
    }

    #[test]
    fn the_parameter_table_aligns_columns() {
        let parameters = vec![
            Parameter {
                name: "NAME".into(),
                description: Some("The   name".into()),
                value: Some("web".into()),
                ..Default::default()
            },
            Parameter {
                name: "PASSWORD".into(),
                generate: Some("expression".into()),
                from: Some("[a-z]{8}".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            parameter_table(&parameters),
            "NAME       DESCRIPTION   GENERATOR    VALUE\n\
             NAME       The name                   web\n\
             PASSWORD                 expression   [a-z]{8}\n"
        );
    }
}
