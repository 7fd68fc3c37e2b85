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
    let usage = [
        "You must either specify the following environment variables:\n  \
         MYSQL_USER (regex: '^[a-zA-Z0-9_]+$')\n  MYSQL_PASSWORD (regex: ",
        "Or the following environment variable:\n  MYSQL_ROOT_PASSWORD (regex: ",
        "Or both.\nOptional Settings:\n  MYSQL_LOWER_CASE_TABLE_NAMES (default: 0)",
    ];
    fails_saying(&pods, "bare", &image, &[], None, &usage, &[]).await;
    // Half of a set is refused too, saying which; so is a value outside sclorg's regexes.
    let half = [("MYSQL_USER", "app")];
    let says = ["error: MYSQL_USER, MYSQL_PASSWORD and MYSQL_DATABASE go together"];
    fails_saying(&pods, "half", &image, &half, None, &says, &[]).await;
    let invalid = [("MYSQL_ROOT_PASSWORD", "has space")];
    let says = ["error: Invalid root password"];
    fails_saying(&pods, "invalid", &image, &invalid, None, &says, &[]).await;
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
    assert_shows(
        &log,
        &[
            ("uid=27 gid=0", "the image's user"),
            ("mysqld is alive", "the templates' probe"),
            ("app@%|shop|round trip", "the user's database round trip"),
            ("refused", "a wrong password is refused"),
            ("root sees 1", "the root password works"),
            (
                "/var/lib/mysql/data/shop",
                "the database is in the data directory",
            ),
            ("kept: round trip", "the data survives a restart"),
            ("old-refused", "the restart set the new password"),
            ("new root", "the restart set the new root password"),
            ("/tmp/server.log:1", "initialised once"),
            ("/tmp/server2.log:0", "initialised once"),
        ],
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
    assert_says(&log, &["remote app@%", "remote root", "default db 7"]);
    ns.delete().await;
}
