//! `slip new-app TEMPLATE | --template NAME | -f FILE [-p KEY=VALUE]...`: an app from a template,
//! as a TemplateInstance (the operator creates its objects, as the user who asked). A positional
//! TEMPLATE is looked for as `oc new-app` looks: a Template of that name in the project, then in
//! the catalog namespace (`openshift`, or `SLIPWAY_CATALOG_NAMESPACE`); the instance refers to
//! it where it was found, and the operator reads it with the user's rights. The template is
//! processed here first, so that a missing, unknown or malformed parameter is refused before
//! anything is created.

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use slipway_crds::process::{ProcessOptions, parse_template, process};
use slipway_crds::template::{EmbeddedMeta, EmbeddedTemplate};
use slipway_crds::{Template, TemplateInstance};

use crate::cluster::{api_error, block_on, client};
use crate::new_app::NewAppArgs;
use crate::objects::{DryRun, check_name};

/// Where OpenShift's shared templates and builder images live; `oc new-app` looks there too.
pub const CATALOG_NAMESPACE: &str = "openshift";

/// The catalog namespace: `SLIPWAY_CATALOG_NAMESPACE`, or `openshift`.
pub fn catalog_namespace() -> String {
    std::env::var("SLIPWAY_CATALOG_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| CATALOG_NAMESPACE.to_string())
}

/// Whether a positional argument could name a Template (pure): a DNS subdomain without the `/`,
/// `:`, `@` or `~` of an image or a source.
pub fn could_be_template(text: &str) -> bool {
    slipway_client::names::check_subdomain(text).is_ok()
}

/// Template `name` of the project, else of the catalog, as read there. A Template the user may
/// not read counts as absent.
pub async fn find_template(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<Option<Stored>> {
    for namespace in [ns.to_string(), catalog_namespace()] {
        let api: Api<Template> = Api::namespaced(client.clone(), &namespace);
        match api.get_opt(name).await {
            Ok(Some(template)) => {
                return Ok(Some(Stored {
                    name: name.to_string(),
                    namespace,
                    template: Some(template),
                }));
            }
            Ok(None) => {}
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            Err(e) => return Err(api_error(e)),
        }
    }
    Ok(None)
}

/// A stored Template: its name, the namespace it is in, and the Template when already read.
pub struct Stored {
    pub name: String,
    pub namespace: String,
    pub template: Option<Template>,
}

/// Instantiates `stored` (a positional TEMPLATE already found), or else `--template` in the
/// project, or else `-f`.
pub fn instantiate(args: &NewAppArgs, namespace: Option<&str>, stored: Option<Stored>) -> anyhow::Result<()> {
    let values = crate::process::collect_assignments(args.params.iter().map(String::as_str))?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let stored = stored.or_else(|| {
            args.template.as_ref().map(|name| Stored {
                name: name.clone(),
                namespace: ns.clone(),
                template: None,
            })
        });
        let (source, template_name, fields, spec) = match (stored, &args.file) {
            (
                Some(Stored {
                    name,
                    namespace,
                    template,
                }),
                _,
            ) => {
                let found = match template {
                    Some(read) => read,
                    None => {
                        let api: Api<Template> = Api::namespaced(client.clone(), &namespace);
                        match api.get_opt(&name).await.map_err(api_error)? {
                            Some(read) => read,
                            None => bail!("template {name} not found in namespace {namespace}"),
                        }
                    }
                };
                let spec = if namespace == ns {
                    json!({"templateRef": {"name": name}})
                } else {
                    json!({"templateRef": {"name": name, "namespace": namespace}})
                };
                (format!("template {namespace}/{name}"), name, found.spec, spec)
            }
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let document = parse_template(&text).with_context(|| path.display().to_string())?;
                let name = document.name.clone().unwrap_or_default();
                let embedded = EmbeddedTemplate {
                    metadata: Some(EmbeddedMeta {
                        name: document.name.clone(),
                        ..EmbeddedMeta::default()
                    }),
                    fields: document.fields.clone(),
                    ..EmbeddedTemplate::default()
                };
                let spec = json!({"template": embedded});
                (path.display().to_string(), name, document.fields, spec)
            }
            (None, None) => bail!("give a git URL or an image, --template NAME, or -f FILE"),
        };
        let processed =
            process(&fields, &values, &ProcessOptions::default()).with_context(|| source.clone())?;
        let name = args.name.clone().unwrap_or(template_name);
        check_name(&name).context("the TemplateInstance's name (give --name)")?;
        let mut spec = spec;
        spec["parameters"] = json!(values);
        let instance: DynamicObject = serde_json::from_value(json!({
            "apiVersion": slipway_crds::API_VERSION, "kind": "TemplateInstance",
            "metadata": {"name": name}, "spec": spec,
        }))?;
        let resource = kube::core::ApiResource::erase::<TemplateInstance>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
        let suffix = match args.dry_run {
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
            DryRun::None => "",
        };
        if args.dry_run != DryRun::Client {
            let params = PostParams {
                dry_run: args.dry_run == DryRun::Server,
                ..PostParams::default()
            };
            api.create(&params, &instance).await.map_err(api_error)?;
        }
        println!(
            "templateinstance.slipway.dev/{name} created{suffix}: {} objects from {source}",
            processed.objects.len()
        );
        // The operator processes the template again (generated values are its own), so the
        // message of this local run is not printed: its values would not be the app's.
        println!("Its objects: kubectl get templateinstance {name} -o yaml (status.objects)");
        Ok(())
    })?
}
