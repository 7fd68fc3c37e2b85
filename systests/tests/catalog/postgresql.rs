//! The PostgreSQL image (sclorg's postgresql-container contract).

use crate::*;

/// Starts the server as the image does, waits for the templates' readiness probe, then runs
/// `then`.
fn with_server(then: &str) -> String {
    format!(
        "run-postgresql > /tmp/server.log 2>&1 &\n\
         for i in $(seq 1 150); do /usr/libexec/check-container && break; sleep 0.2; done\n\
         /usr/libexec/check-container || {{ cat /tmp/server.log; exit 1; }}\n\
         /usr/libexec/check-container --live && echo live\n{then}"
    )
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn postgresql_without_its_variables_exits_with_sclorg_message() {
    let (image, config) = stand_in("postgresql");
    assert_eq!(config.pointer("/config/User").and_then(Value::as_str), Some("26"));
    assert_eq!(labels(&config)["io.openshift.expose-services"], "5432:postgresql");
    let (_client, ns, pods) = namespace("cat-pg-usage").await;
    let usage = [
        "You must either specify the following environment variables:\n  POSTGRESQL_USER",
        "Or the following environment variable:\n  POSTGRESQL_ADMIN_PASSWORD",
    ];
    fails_saying(&pods, "bare", &image, &[], None, &usage, &[]).await;
    // Half of a set is refused too, saying which.
    let half = [("POSTGRESQL_USER", "app")];
    let says = ["error: POSTGRESQL_USER, POSTGRESQL_PASSWORD and POSTGRESQL_DATABASE go together"];
    fails_saying(&pods, "half", &image, &half, None, &says, &[]).await;
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn postgresql_creates_the_user_database_and_admin_password_it_is_given() {
    let (image, _) = stand_in("postgresql");
    let (_client, ns, pods) = namespace("cat-pg").await;
    let script = with_server(
        "set -e\n\
         PGPASSWORD=s3cret psql -h 127.0.0.1 -U app -d shop -Atc \
           \"CREATE TABLE t (v text); INSERT INTO t VALUES ('round trip'); SELECT current_user, current_database(), v FROM t\"\n\
         PGPASSWORD=wrong psql -h 127.0.0.1 -U app -d shop -c 'SELECT 1' 2>&1 | grep -q 'password authentication failed' && echo refused\n\
         PGPASSWORD=adm1n psql -h 127.0.0.1 -U postgres -d shop -Atc 'SELECT count(*) FROM t'\n\
         ls /var/lib/pgsql/data/userdata/PG_VERSION\n",
    );
    let env = [
        ("POSTGRESQL_USER", "app"),
        ("POSTGRESQL_PASSWORD", "s3cret"),
        ("POSTGRESQL_DATABASE", "shop"),
        ("POSTGRESQL_ADMIN_PASSWORD", "adm1n"),
    ];
    let log = succeeds(&pods, "server", &image, &env, &format!("{IDENTITY}{script}")).await;
    assert_shows(
        &log,
        &[
            ("uid=26 gid=0", "the image's user"),
            ("live", "the liveness check"),
            ("app|shop|round trip", "the user's database round trip"),
            ("refused", "a wrong password is refused"),
            (
                "/var/lib/pgsql/data/userdata/PG_VERSION",
                "the data directory the templates mount",
            ),
        ],
    );
    assert!(log.lines().any(|l| l == "1"), "the admin password works:\n{log}");
    ns.delete().await;
}
