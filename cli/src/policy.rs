//! `slip policy add-role-to-user | remove-role-from-user | add-role-to-group |
//! remove-role-from-group | who-can`: project membership through RBAC RoleBindings, as `oc
//! policy` manages it (one RoleBinding per role, named after the role, subjects added and
//! removed idempotently).

use std::collections::BTreeSet;

use anyhow::bail;
use clap::{Args, Subcommand};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::cluster::{api_error, block_on, client};
use crate::objects::{DryRun, Output, WriteFlags, render};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Give users a role in the project: the ClusterRole ROLE (admin, edit, view...), or the
    /// project's Role ROLE with --role-namespace.
    AddRoleToUser(MemberArgs),
    /// Take a role in the project from users.
    RemoveRoleFromUser(MemberArgs),
    /// Give groups a role in the project.
    AddRoleToGroup(MemberArgs),
    /// Take a role in the project from groups.
    RemoveRoleFromGroup(MemberArgs),
    /// List who may do VERB on RESOURCE in the project. Reads the RoleBindings,
    /// ClusterRoleBindings, Roles and ClusterRoles (Kubernetes has no ResourceAccessReview), so
    /// it needs the right to list them; aggregated ClusterRoles count with their aggregated rules.
    WhoCan(WhoCanArgs),
}

#[derive(Args, Debug)]
pub struct MemberArgs {
    /// The role: a ClusterRole's name, or a Role's with --role-namespace.
    role: String,
    /// Users or groups (`system:serviceaccount:NS:NAME` is a ServiceAccount).
    #[arg(required = true)]
    names: Vec<String>,
    /// The role is a Role of this namespace (it must be the project's), not a ClusterRole.
    #[arg(long)]
    role_namespace: Option<String>,
    #[command(flatten)]
    write: WriteFlags,
}

#[derive(Args, Debug)]
pub struct WhoCanArgs {
    /// The verb: get, list, watch, create, update, patch, delete...
    verb: String,
    /// The resource, RESOURCE or RESOURCE.GROUP (pods, deployments.apps, deploymentconfigs...).
    resource: String,
    /// Print the answer as json or yaml.
    #[arg(short = 'o', long = "output", value_enum)]
    output: Option<Output>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SubjectKind {
    User,
    Group,
}

pub fn run(args: PolicyArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    match args.command {
        PolicyCommand::AddRoleToUser(a) => members(a, SubjectKind::User, true, namespace),
        PolicyCommand::RemoveRoleFromUser(a) => members(a, SubjectKind::User, false, namespace),
        PolicyCommand::AddRoleToGroup(a) => members(a, SubjectKind::Group, true, namespace),
        PolicyCommand::RemoveRoleFromGroup(a) => members(a, SubjectKind::Group, false, namespace),
        PolicyCommand::WhoCan(a) => who_can(a, namespace),
    }
}

/// The RBAC subject for a user or group name (pure).
fn subject(kind: SubjectKind, name: &str) -> anyhow::Result<Subject> {
    if name.trim().is_empty() {
        bail!(
            "an empty {} name",
            if kind == SubjectKind::User {
                "user"
            } else {
                "group"
            }
        );
    }
    if kind == SubjectKind::User
        && let Some(rest) = name.strip_prefix("system:serviceaccount:")
    {
        let Some((ns, sa)) = rest.split_once(':') else {
            bail!("{name:?} is not system:serviceaccount:NAMESPACE:NAME");
        };
        crate::objects::check_name(sa)?;
        return Ok(Subject {
            kind: "ServiceAccount".into(),
            name: sa.into(),
            namespace: Some(ns.into()),
            api_group: None,
        });
    }
    Ok(Subject {
        kind: if kind == SubjectKind::User {
            "User"
        } else {
            "Group"
        }
        .into(),
        name: name.into(),
        api_group: Some(RBAC_GROUP.into()),
        namespace: None,
    })
}

fn same_subject(a: &Subject, b: &Subject) -> bool {
    a.kind == b.kind && a.name == b.name && a.namespace == b.namespace
}

fn role_ref(args: &MemberArgs) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.into(),
        kind: if args.role_namespace.is_some() {
            "Role"
        } else {
            "ClusterRole"
        }
        .into(),
        name: args.role.clone(),
    }
}

/// `clusterrole.rbac.authorization.k8s.io/edit`, as oc names the role in its messages.
fn role_label(role: &RoleRef) -> String {
    format!("{}.{RBAC_GROUP}/{}", role.kind.to_lowercase(), role.name)
}

/// A role's name as RBAC takes it: a path segment name (OpenShift's `system:image-puller` has a
/// colon), which the binding named after it takes too (pure).
pub fn check_role_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 253
        || name == "."
        || name == ".."
        || name.contains(['/', '%'])
        || name.chars().any(char::is_control)
    {
        bail!(
            "{name:?} is not a valid role name: at most 253 characters, without '/' or '%', not '.' or '..'"
        );
    }
    Ok(())
}

fn members(args: MemberArgs, kind: SubjectKind, add: bool, namespace: Option<&str>) -> anyhow::Result<()> {
    check_role_name(&args.role)?;
    let subjects = args
        .names
        .iter()
        .map(|n| subject(kind, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    block_on(async {
        let (client, ns) = client(namespace).await?;
        if let Some(role_ns) = &args.role_namespace
            && role_ns != &ns
        {
            bail!("--role-namespace {role_ns}: a RoleBinding in {ns} can only refer to a Role of {ns}");
        }
        let role = role_ref(&args);
        check_role_exists(&client, &role, &ns).await?;
        let bindings: Api<RoleBinding> = Api::namespaced(client, &ns);
        let mine: Vec<RoleBinding> = bindings
            .list(&ListParams::default())
            .await
            .map_err(api_error)?
            .items
            .into_iter()
            .filter(|b| b.role_ref == role)
            .collect();
        if add {
            add_subjects(&bindings, mine, &role, &subjects, args.write).await?;
        } else {
            remove_subjects(&bindings, mine, &subjects, args.write).await?;
        }
        let names: Vec<String> = args.names.iter().map(|n| format!("{n:?}")).collect();
        let verb = if add { "added" } else { "removed" };
        if args.write.output.is_none() {
            println!(
                "{} {verb}: {}{}",
                role_label(&role),
                names.join(", "),
                args.write.dry_run.suffix()
            );
        }
        Ok(())
    })?
}

/// A missing role is an error; one the user may not read (a project admin cannot read
/// ClusterRoles) is left to the API server, which checks the binding on its own.
async fn check_role_exists(client: &kube::Client, role: &RoleRef, ns: &str) -> anyhow::Result<()> {
    let found = if role.kind == "Role" {
        Api::<Role>::namespaced(client.clone(), ns)
            .get_opt(&role.name)
            .await
            .map(|r| r.is_some())
    } else {
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&role.name)
            .await
            .map(|r| r.is_some())
    };
    match found {
        Ok(true) => Ok(()),
        Ok(false) if role.kind == "Role" => bail!("role {} not found in namespace {ns}", role.name),
        Ok(false) => bail!("clusterrole {} not found", role.name),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        Err(e) => Err(api_error(e)),
    }
}

/// Adds the subjects missing from the role's bindings: to the first binding of the role, or to
/// a new one named after it (`ROLE`, or `ROLE-N` when that name is taken by another role's).
async fn add_subjects(
    api: &Api<RoleBinding>,
    mine: Vec<RoleBinding>,
    role: &RoleRef,
    subjects: &[Subject],
    write: WriteFlags,
) -> anyhow::Result<()> {
    let bound = |s: &Subject| {
        mine.iter()
            .any(|b| b.subjects.iter().flatten().any(|t| same_subject(s, t)))
    };
    let missing: Vec<Subject> = subjects.iter().filter(|s| !bound(s)).cloned().collect();
    let params = PostParams {
        dry_run: write.dry_run == DryRun::Server,
        ..PostParams::default()
    };
    let written = if let Some(mut first) = mine.into_iter().next() {
        first.subjects.get_or_insert_with(Vec::new).extend(missing);
        let name = first.metadata.name.clone().unwrap_or_default();
        match write.dry_run {
            DryRun::Client => first,
            _ => api.replace(&name, &params, &first).await.map_err(api_error)?,
        }
    } else {
        let name = free_binding_name(api, &role.name).await?;
        let binding: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": role,
            "subjects": missing,
        }))?;
        match write.dry_run {
            DryRun::Client => binding,
            _ => api.create(&params, &binding).await.map_err(api_error)?,
        }
    };
    print_binding(&written, write.output)
}

fn print_binding(binding: &RoleBinding, output: Option<Output>) -> anyhow::Result<()> {
    if let Some(output) = output {
        let mut value = serde_json::to_value(binding)?;
        value["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
        value["kind"] = json!("RoleBinding");
        print!("{}", render(&value, output)?);
    }
    Ok(())
}

async fn free_binding_name(api: &Api<RoleBinding>, role: &str) -> anyhow::Result<String> {
    let taken: BTreeSet<String> = api
        .list(&ListParams::default())
        .await
        .map_err(api_error)?
        .items
        .into_iter()
        .filter_map(|b| b.metadata.name)
        .collect();
    Ok(std::iter::once(role.to_string())
        .chain((0..).map(|n| format!("{role}-{n}")))
        .find(|name| !taken.contains(name))
        .unwrap_or_default())
}

/// Removes the subjects from every binding of the role; a binding left without subjects is
/// deleted. Removing someone who has no such binding is not an error (idempotent), as in oc.
async fn remove_subjects(
    api: &Api<RoleBinding>,
    mine: Vec<RoleBinding>,
    subjects: &[Subject],
    write: WriteFlags,
) -> anyhow::Result<()> {
    let params = PostParams {
        dry_run: write.dry_run == DryRun::Server,
        ..PostParams::default()
    };
    for mut binding in mine {
        let before = binding.subjects.as_ref().map_or(0, Vec::len);
        let kept: Vec<Subject> = binding
            .subjects
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !subjects.iter().any(|s| same_subject(s, t)))
            .collect();
        if kept.len() == before || write.dry_run == DryRun::Client {
            binding.subjects = Some(kept);
            print_binding(&binding, write.output)?;
            continue;
        }
        let name = binding.metadata.name.clone().unwrap_or_default();
        if kept.is_empty() {
            let delete = DeleteParams {
                dry_run: params.dry_run,
                ..DeleteParams::default()
            };
            api.delete(&name, &delete).await.map_err(api_error)?;
        } else {
            binding.subjects = Some(kept);
            let written = api.replace(&name, &params, &binding).await.map_err(api_error)?;
            print_binding(&written, write.output)?;
        }
    }
    Ok(())
}

/// Splits `RESOURCE.GROUP`; the short names of the project's kinds are known (pure).
fn resource_and_group(text: &str) -> (String, String) {
    let lower = text.to_ascii_lowercase();
    let known = match lower.as_str() {
        "dc" | "deploymentconfig" | "deploymentconfigs" => Some(("deploymentconfigs", "slipway.dev")),
        "bc" | "buildconfig" | "buildconfigs" => Some(("buildconfigs", "slipway.dev")),
        "build" | "builds" => Some(("builds", "slipway.dev")),
        "is" | "imagestream" | "imagestreams" => Some(("imagestreams", "slipway.dev")),
        "deploy" | "deployment" | "deployments" => Some(("deployments", "apps")),
        "rs" | "replicaset" | "replicasets" => Some(("replicasets", "apps")),
        "po" | "pod" => Some(("pods", "")),
        "svc" | "service" => Some(("services", "")),
        "secret" => Some(("secrets", "")),
        "cm" | "configmap" => Some(("configmaps", "")),
        "ing" | "ingress" | "ingresses" => Some(("ingresses", "networking.k8s.io")),
        _ => None,
    };
    if let Some((resource, group)) = known {
        return (resource.into(), group.into());
    }
    match lower.split_once('.') {
        Some((resource, group)) => (resource.into(), group.into()),
        None => (lower, String::new()),
    }
}

/// Whether a rule grants `verb` on `resource` of `group` (pure). Subresources (`pods/log`)
/// must be named; `*` matches anything.
fn grants(rule: &PolicyRule, verb: &str, resource: &str, group: &str) -> bool {
    let any = |list: &[String], what: &str| list.iter().any(|x| x == "*" || x == what);
    any(&rule.verbs, verb)
        && any(rule.api_groups.as_deref().unwrap_or_default(), group)
        && any(rule.resources.as_deref().unwrap_or_default(), resource)
        && rule.resource_names.as_deref().unwrap_or_default().is_empty()
}

/// The names a subject shows as: a ServiceAccount as the user it authenticates as.
fn subject_entry(subject: &Subject, binding_ns: Option<&str>) -> (bool, String) {
    match subject.kind.as_str() {
        "Group" => (false, subject.name.clone()),
        "ServiceAccount" => (
            true,
            format!(
                "system:serviceaccount:{}:{}",
                subject.namespace.as_deref().or(binding_ns).unwrap_or_default(),
                subject.name
            ),
        ),
        _ => (true, subject.name.clone()),
    }
}

struct Access {
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Access {
    fn add(&mut self, subjects: Option<&Vec<Subject>>, binding_ns: Option<&str>) {
        for subject in subjects.into_iter().flatten() {
            let (user, name) = subject_entry(subject, binding_ns);
            if user {
                self.users.insert(name);
            } else {
                self.groups.insert(name);
            }
        }
    }
}

fn who_can(args: WhoCanArgs, namespace: Option<&str>) -> anyhow::Result<()> {
    let (resource, group) = resource_and_group(&args.resource);
    let verb = args.verb.to_ascii_lowercase();
    block_on(async {
        let (client, ns) = client(namespace).await?;
        let cluster_roles = Api::<ClusterRole>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("reading ClusterRoles: {}", api_error(e)))?;
        let allows_cluster_role = |name: &str| {
            cluster_roles.items.iter().any(|r| {
                r.metadata.name.as_deref() == Some(name)
                    && r.rules
                        .iter()
                        .flatten()
                        .any(|rule| grants(rule, &verb, &resource, &group))
            })
        };
        let roles = Api::<Role>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("reading Roles in {ns}: {}", api_error(e)))?;
        let allows_role = |name: &str| {
            roles.items.iter().any(|r| {
                r.metadata.name.as_deref() == Some(name)
                    && r.rules
                        .iter()
                        .flatten()
                        .any(|rule| grants(rule, &verb, &resource, &group))
            })
        };
        let mut access = Access {
            users: BTreeSet::new(),
            groups: BTreeSet::new(),
        };
        let cluster_bindings = Api::<ClusterRoleBinding>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("reading ClusterRoleBindings: {}", api_error(e)))?;
        for binding in &cluster_bindings.items {
            if allows_cluster_role(&binding.role_ref.name) {
                access.add(binding.subjects.as_ref(), None);
            }
        }
        let bindings = Api::<RoleBinding>::namespaced(client, &ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("reading RoleBindings in {ns}: {}", api_error(e)))?;
        for binding in &bindings.items {
            let allowed = match binding.role_ref.kind.as_str() {
                "Role" => allows_role(&binding.role_ref.name),
                _ => allows_cluster_role(&binding.role_ref.name),
            };
            if allowed {
                access.add(binding.subjects.as_ref(), Some(&ns));
            }
        }
        print_access(&access, &ns, &verb, &resource, &group, args.output)
    })?
}

fn print_access(
    access: &Access,
    ns: &str,
    verb: &str,
    resource: &str,
    group: &str,
    output: Option<Output>,
) -> anyhow::Result<()> {
    let full = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if let Some(output) = output {
        let value = json!({
            "namespace": ns, "verb": verb, "resource": full,
            "users": access.users, "groups": access.groups,
        });
        let text = match output {
            Output::Yaml => serde_yaml_ng::to_string(&value)?,
            _ => format!("{}\n", serde_json::to_string_pretty(&value)?),
        };
        print!("{text}");
        return Ok(());
    }
    let column = |items: &BTreeSet<String>| {
        let mut lines = items.iter().map(String::as_str);
        let first = lines.next().unwrap_or("<none>");
        std::iter::once(first.to_string())
            .chain(lines.map(|l| format!("        {l}")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    println!("Namespace: {ns}\nVerb:      {verb}\nResource:  {full}\n");
    println!("Users:  {}\n", column(&access.users));
    println!("Groups: {}", column(&access.groups));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn role_names_are_path_segments_as_rbac_has_them() {
        for good in ["edit", "system:image-puller", "system:image-pusher", "my.role_1"] {
            assert!(check_role_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a%2f", &"x".repeat(254), "a\nb"] {
            assert!(check_role_name(bad).is_err(), "{bad:?}");
        }
    }

    use super::*;

    #[test]
    fn service_account_users_become_service_account_subjects() {
        let sa = subject(SubjectKind::User, "system:serviceaccount:team:robot").unwrap();
        assert_eq!(
            (sa.kind.as_str(), sa.name.as_str(), sa.namespace.as_deref()),
            ("ServiceAccount", "robot", Some("team"))
        );
        let user = subject(SubjectKind::User, "alice").unwrap();
        assert_eq!(
            (user.kind.as_str(), user.api_group.as_deref()),
            ("User", Some(RBAC_GROUP))
        );
        assert!(subject(SubjectKind::Group, " ").is_err());
        assert!(subject(SubjectKind::User, "system:serviceaccount:nope").is_err());
    }

    #[test]
    fn rules_grant_by_verb_group_and_resource() {
        let rule: PolicyRule = serde_json::from_value(json!({
            "apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["get", "list"]
        }))
        .unwrap();
        assert!(grants(&rule, "get", "pods", ""));
        assert!(grants(&rule, "list", "deployments", "apps"));
        assert!(!grants(&rule, "delete", "pods", ""));
        assert!(!grants(&rule, "get", "secrets", ""));
        let star: PolicyRule =
            serde_json::from_value(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})).unwrap();
        assert!(grants(&star, "delete", "deploymentconfigs", "slipway.dev"));
        assert_eq!(
            resource_and_group("dc"),
            ("deploymentconfigs".into(), "slipway.dev".into())
        );
        assert_eq!(resource_and_group("jobs.batch"), ("jobs".into(), "batch".into()));
        assert_eq!(resource_and_group("pods"), ("pods".into(), String::new()));
    }
}
