//! `slip new-app --template NAME | -f FILE [-p KEY=VALUE]...`: an app from a template, as a
//! TemplateInstance (the operator creates its objects, as the user who asked). The template is
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

pub fn instantiate(args: &NewAppArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let values = crate::process::collect_assignments(args.params.iter().map(String::as_str))?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let (source, template_name, fields, spec) = match (&args.template, &args.file) {
            (Some(name), _) => {
                let api: Api<Template> = Api::namespaced(client.clone(), &ns);
                let Some(stored) = api.get_opt(name).await.map_err(api_error)? else {
                    bail!("template {name} not found in namespace {ns}");
                };
                let spec = json!({"templateRef": {"name": name}});
                (format!("template {name}"), name.clone(), stored.spec, spec)
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
