//! The Redis image (sclorg's redis-container contract).

use crate::*;

/// The readiness probe of the redis-ephemeral / redis-persistent templates.
const PROBE: &str = r#"test "$(redis-cli -h 127.0.0.1 -a $REDIS_PASSWORD ping)" == "PONG""#;

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn redis_without_a_password_serves_anyone_as_sclorg_does() {
    let (image, config) = stand_in("redis");
    assert_eq!(
        config.pointer("/config/User").and_then(Value::as_str),
        Some("1001")
    );
    assert_eq!(labels(&config)["io.openshift.expose-services"], "6379:redis");
    assert!(labels(&config)["io.openshift.tags"].contains("redis"), "{config}");
    let (_client, ns, pods) = namespace("cat-redis-open").await;
    let script = "run-redis > /tmp/server.log 2>&1 &\n\
         for i in $(seq 1 100); do [ \"$(redis-cli -h 127.0.0.1 ping 2>/dev/null)\" = PONG ] && break; sleep 0.2; done\n\
         head -n 1 /tmp/server.log\n\
         echo \"ping: $(redis-cli -h 127.0.0.1 ping)\"\n\
         echo \"protected-mode: $(redis-cli -h 127.0.0.1 config get protected-mode | tail -n 1)\"\n\
         echo \"appendonly: $(redis-cli -h 127.0.0.1 config get appendonly | tail -n 1)\"\n\
         echo \"dir: $(redis-cli -h 127.0.0.1 config get dir | tail -n 1)\"\n";
    let log = succeeds(&pods, "open", &image, &[], &format!("{IDENTITY}{script}")).await;
    assert_says(
        &log,
        &[
            "uid=1001 gid=0",
            "no password",
            "ping: PONG",
            "protected-mode: no",
            "appendonly: yes",
            "dir: /var/lib/redis/data",
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn redis_requires_redis_password_and_keeps_its_data_over_a_restart() {
    let (image, _) = stand_in("redis");
    let (_client, ns, pods) = namespace("cat-redis").await;
    let script = format!(
        "run-redis > /tmp/server.log 2>&1 &\n\
         for i in $(seq 1 100); do /bin/sh -i -c '{PROBE}' 2>/dev/null && break; sleep 0.2; done\n\
         /bin/sh -i -c '{PROBE}' && echo probe-ok\n\
         export REDISCLI_AUTH=s3cret\n\
         redis-cli -h 127.0.0.1 set greeting 'round trip'\n\
         REDISCLI_AUTH=wrong redis-cli -h 127.0.0.1 get greeting\n\
         env -u REDISCLI_AUTH redis-cli -h 127.0.0.1 get greeting\n\
         redis-cli -h 127.0.0.1 shutdown\n\
         wait\n\
         ls /var/lib/redis/data/appendonlydir\n\
         run-redis > /tmp/server2.log 2>&1 &\n\
         for i in $(seq 1 100); do /bin/sh -i -c '{PROBE}' 2>/dev/null && break; sleep 0.2; done\n\
         echo \"kept: $(redis-cli -h 127.0.0.1 get greeting)\"\n"
    );
    let log = succeeds(&pods, "server", &image, &[("REDIS_PASSWORD", "s3cret")], &script).await;
    assert_shows(
        &log,
        &[
            ("probe-ok", "the templates' readiness probe"),
            ("WRONGPASS", "a wrong password is refused"),
            ("NOAUTH", "no password is refused"),
            ("appendonly.aof", "the append-only file is in the data directory"),
            ("kept: round trip", "the data survives a restart"),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn redis_as_the_templates_run_it_is_ready_and_reachable_from_other_pods() {
    let (image, _) = stand_in("redis");
    let (_client, ns, pods) = namespace("cat-redis-tpl").await;
    let ip = serve(&pods, "redis", &image, &[("REDIS_PASSWORD", "s3cret")], PROBE).await;
    let script = format!(
        "REDISCLI_AUTH=s3cret redis-cli -h {ip} set k remote\n\
         echo \"remote: $(REDISCLI_AUTH=s3cret redis-cli -h {ip} get k)\"\n\
         redis-cli -h {ip} get k\n"
    );
    let log = succeeds(&pods, "client", &image, &[], &script).await;
    assert_shows(
        &log,
        &[
            ("remote: remote", "the password is accepted from other pods"),
            ("NOAUTH", "the password is required from other pods"),
        ],
    );
    ns.delete().await;
}
