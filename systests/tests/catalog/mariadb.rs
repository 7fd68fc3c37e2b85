//! The MariaDB image, which stands in for both sclorg's mysql-container and mariadb-container.

use crate::*;

/// The templates' probes (mysql-persistent / mariadb-persistent, then cakephp-mysql-persistent and
/// dancer-mysql-persistent, whose values are filled in by the template), run as the kubelet runs
/// them.
const PROBE: &str = r#"MYSQL_PWD="$MYSQL_PASSWORD" mysqladmin -u $MYSQL_USER ping"#;
const QUERY_PROBE: &str = "MYSQL_PWD='s3cret' mysql -h 127.0.0.1 -u app -D shop -e 'SELECT 1'";

/// The variables of the templates' Secret.
const ENV: [(&str, &str); 4] = [
    ("MYSQL_USER", "app"),
    ("MYSQL_PASSWORD", "s3cret"),
    ("MYSQL_DATABASE", "shop"),
    ("MYSQL_ROOT_PASSWORD", "r00t"),
];

/// Starts `image` with its own command and `env` in a pod, and waits until `probe` (a readiness
/// probe run with `/bin/sh -i -c`, as the templates declare theirs) passes. The pod's IP.
pub(super) async fn serve(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    probe: &str,
) -> String {
    let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "c", "image": image, "env": env,
            "readinessProbe": {
                "exec": {"command": ["/bin/sh", "-i", "-c", probe]},
                "initialDelaySeconds": 2, "periodSeconds": 2, "timeoutSeconds": 10
            }
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let status = pods.get(name).await.ok().and_then(|p| p.status);
        let ready = status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            return status.and_then(|s| s.pod_ip).unwrap();
        }
        let ended = status
            .and_then(|s| s.phase)
            .is_some_and(|p| p == "Failed" || p == "Succeeded");
        if ended || tokio::time::Instant::now() > deadline {
            let log = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
            panic!("pod {name} never became ready (probe: {probe}):\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Starts the server as the image does (in the background of a script), waits for the
/// templates' probes, then runs `then`.
fn with_server(then: &str) -> String {
    format!(
        "run-mysqld > /tmp/server.log 2>&1 &\n\
         ready() {{ /bin/sh -i -c '{PROBE}' 2>/dev/null | grep -q alive && /bin/sh -i -c \"{QUERY_PROBE}\" >/dev/null 2>&1; }}\n\
         for i in $(seq 1 300); do ready && break; sleep 0.2; done\n\
         ready || {{ cat /tmp/server.log; exit 1; }}\n{then}"
    )
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn mariadb_without_its_variables_exits_with_sclorg_message() {
    let (image, config) = stand_in("mariadb");
    assert_eq!(config.pointer("/config/User").and_then(Value::as_str), Some("27"));
    assert_eq!(labels(&config)["io.openshift.expose-services"], "3306:mysql");
    assert!(labels(&config)["io.openshift.tags"].contains("mysql"), "{config}");
    let (_client, ns, pods) = namespace("cat-mariadb-usage").await;
    let (phase, log) = run(&pods, "bare", &image, &[], None).await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(
        log.contains(
            "You must either specify the following environment variables:\n  \
             MYSQL_USER (regex: '^[a-zA-Z0-9_]+$')\n  MYSQL_PASSWORD (regex: "
        ) && log.contains("Or the following environment variable:\n  MYSQL_ROOT_PASSWORD (regex: ")
            && log.contains("Or both.\nOptional Settings:\n  MYSQL_LOWER_CASE_TABLE_NAMES (default: 0)"),
        "{log}"
    );
    // Half of a set is refused too, saying which; so is a value outside sclorg's regexes.
    let (phase, log) = run(&pods, "half", &image, &[("MYSQL_USER", "app")], None).await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(
        log.contains("error: MYSQL_USER, MYSQL_PASSWORD and MYSQL_DATABASE go together"),
        "{log}"
    );
    let (phase, log) = run(
        &pods,
        "invalid",
        &image,
        &[("MYSQL_ROOT_PASSWORD", "has space")],
        None,
    )
    .await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(log.contains("error: Invalid root password"), "{log}");
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn mariadb_creates_the_user_database_and_root_password_and_keeps_them_over_a_restart() {
    let (image, _) = stand_in("mariadb");
    let (_client, ns, pods) = namespace("cat-mariadb").await;
    let script = with_server(
        "set -e\n\
         /bin/sh -i -c '{PROBE}'\n\
         MYSQL_PWD=s3cret mysql -h 127.0.0.1 -u app -D shop -N -e \
           \"CREATE TABLE t (v text); INSERT INTO t VALUES ('round trip'); \
             SELECT CONCAT_WS('|', CURRENT_USER(), DATABASE(), v) FROM t\"\n\
         MYSQL_PWD=wrong mysql -h 127.0.0.1 -u app -D shop -e 'SELECT 1' 2>&1 | grep -q 'Access denied' && echo refused\n\
         MYSQL_PWD=r00t mysql -h 127.0.0.1 -u root -N -e 'SELECT CONCAT(\"root sees \", COUNT(*)) FROM shop.t'\n\
         ls -d /var/lib/mysql/data/shop\n\
         mysqladmin -u root shutdown\n\
         while [ -e /run/mysqld/mysqld.sock ]; do sleep 0.2; done\n\
         echo '---> restart with new passwords'\n\
         export MYSQL_PASSWORD=n3w MYSQL_ROOT_PASSWORD=r00t2\n\
         run-mysqld > /tmp/server2.log 2>&1 &\n\
         for i in $(seq 1 300); do MYSQL_PWD=n3w mysql -h 127.0.0.1 -u app -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done\n\
         MYSQL_PWD=n3w mysql -h 127.0.0.1 -u app -D shop -N -e 'SELECT CONCAT(\"kept: \", v) FROM t'\n\
         MYSQL_PWD=s3cret mysql -h 127.0.0.1 -u app -e 'SELECT 1' 2>&1 | grep -q 'Access denied' && echo old-refused\n\
         MYSQL_PWD=r00t2 mysql -h 127.0.0.1 -u root -N -e 'SELECT \"new root\"'\n\
         grep -c 'Initializing the database' /tmp/server.log /tmp/server2.log\n"
            .replace("{PROBE}", PROBE)
            .as_str(),
    );
    let log = succeeds(&pods, "server", &image, &ENV, &format!("{IDENTITY}{script}")).await;
    assert!(log.contains("uid=27 gid=0"), "{log}");
    assert!(log.contains("mysqld is alive"), "the templates' probe:\n{log}");
    assert!(
        log.contains("app@%|shop|round trip"),
        "the user's database round trip:\n{log}"
    );
    assert!(log.contains("refused"), "a wrong password is refused:\n{log}");
    assert!(log.contains("root sees 1"), "the root password works:\n{log}");
    assert!(log.contains("/var/lib/mysql/data/shop"), "{log}");
    assert!(
        log.contains("kept: round trip"),
        "the data survives a restart:\n{log}"
    );
    assert!(
        log.contains("old-refused"),
        "the restart set the new password:\n{log}"
    );
    assert!(log.contains("new root"), "{log}");
    assert!(
        log.contains("/tmp/server.log:1") && log.contains("/tmp/server2.log:0"),
        "initialised once:\n{log}"
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn mariadb_as_the_templates_run_it_is_ready_and_reachable_from_other_pods() {
    let (image, _) = stand_in("mariadb");
    let (_client, ns, pods) = namespace("cat-mariadb-tpl").await;
    // The image's own command; the readiness probe of mysql-persistent, then of the quickstarts
    // (with their MYSQL_DEFAULT_AUTHENTICATION_PLUGIN and a database named `default`).
    let ip = serve(&pods, "mysql", &image, &ENV, PROBE).await;
    let env = [
        ("MYSQL_USER", "app"),
        ("MYSQL_PASSWORD", "s3cret"),
        ("MYSQL_DATABASE", "default"),
        ("MYSQL_DEFAULT_AUTHENTICATION_PLUGIN", "mysql_native_password"),
    ];
    let probe = "MYSQL_PWD='s3cret' mysql -h 127.0.0.1 -u app -D default -e 'SELECT 1'";
    let quickstart_ip = serve(&pods, "quickstart", &image, &env, probe).await;
    let script = format!(
        "set -e\n\
         MYSQL_PWD=s3cret mysql -h {ip} -u app -D shop -N -e 'SELECT CONCAT(\"remote \", CURRENT_USER())'\n\
         MYSQL_PWD=r00t mysql -h {ip} -u root -N -e 'SELECT \"remote root\"'\n\
         MYSQL_PWD=s3cret mysql -h {quickstart_ip} -u app -D default -N -e \
           'CREATE TABLE t (v int); INSERT INTO t VALUES (7); SELECT CONCAT(\"default db \", v) FROM t'\n"
    );
    let log = succeeds(&pods, "client", &image, &[], &script).await;
    assert!(log.contains("remote app@%"), "{log}");
    assert!(log.contains("remote root"), "{log}");
    assert!(log.contains("default db 7"), "{log}");
    ns.delete().await;
}
