//! The nginx builder (sclorg's nginx-container S2I contract).

use crate::*;

/// The quickstart sample (examples/quickstarts/nginx-site) as assemble finds it in /tmp/src.
fn sample_source() -> String {
    format!(
        "mkdir -p /tmp/src/nginx-cfg /tmp/src/nginx-default-cfg\n\
         cat > /tmp/src/index.html <<'EOF_INDEX'\n{}EOF_INDEX\n\
         cat > /tmp/src/nginx-cfg/sample.conf <<'EOF_CFG'\n{}EOF_CFG\n\
         cat > /tmp/src/nginx-default-cfg/health.conf <<'EOF_DEFAULT'\n{}EOF_DEFAULT\n",
        include_str!("../../../examples/quickstarts/nginx-site/index.html"),
        include_str!("../../../examples/quickstarts/nginx-site/nginx-cfg/sample.conf"),
        include_str!("../../../examples/quickstarts/nginx-site/nginx-default-cfg/health.conf"),
    )
}

/// Starts the assembled application as the image does and waits for port 8080.
const RUN: &str = "/usr/libexec/s2i/run &\n\
    for i in $(seq 1 100); do curl -fs -o /dev/null localhost:8080/ && break; sleep 0.2; done\n";

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nginx_builder_labels_user_and_environment() {
    let (image, config) = stand_in("nginx");
    assert_builder_labels(&config);
    assert!(labels(&config)["io.openshift.tags"].contains("nginx"), "{config}");
    let env = environment(&config);
    assert_eq!(env["NGINX_CONF_PATH"], "/etc/nginx/nginx.conf");
    assert_eq!(env["NGINX_CONFIGURATION_PATH"], "/opt/app-root/etc/nginx.d");
    assert_eq!(
        env["NGINX_DEFAULT_CONF_PATH"],
        "/opt/app-root/etc/nginx.default.d"
    );
    let (_client, ns, pods) = namespace("cat-nginx").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "usage"],
        "nginx -v 2>&1; nginx -t 2>&1",
    )
    .await;
    assert_shows(
        &log,
        &[
            ("nginx version: nginx/1.", "nginx -v"),
            ("test is successful", "the configuration is valid as user 1001"),
        ],
    );
    // Its own command is the usage, as sclorg's.
    let (phase, log) = run(&pods, "usage", &image, &[], None).await;
    assert_eq!(phase, "Succeeded", "{log}");
    assert_says(&log, &["nginx-default-cfg/*.conf"]);
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nginx_assemble_installs_cfg_dirs_and_run_serves_the_site_on_8080() {
    let (image, _) = stand_in("nginx");
    let (_client, ns, pods) = namespace("cat-nginx-run").await;
    let script = format!(
        "set -e\n{}\n/usr/libexec/s2i/assemble\n{RUN}\
         curl -fsi localhost:8080/\n\
         echo \"health: $(curl -fs localhost:8080/health)\"\n\
         curl -s -o /dev/null -w 'cfg: %{{http_code}}\\n' localhost:8080/nginx-cfg/sample.conf\n",
        sample_source()
    );
    let log = succeeds(&pods, "site", &image, &[], &script).await;
    assert_says(
        &log,
        &[
            "Installing the configuration of nginx-cfg/",
            "Installing the configuration of nginx-default-cfg/",
        ],
    );
    assert_shows(
        &log,
        &[
            ("Welcome to your static nginx site on Slipway", "the page"),
            ("X-Slipway-Sample: nginx-site", "nginx-cfg/sample.conf's header"),
            ("health: ok", "nginx-default-cfg/health.conf's location"),
            ("cfg: 404", "the config directories are not served"),
            ("\"GET /health HTTP/1.1\" 200", "the access log is the output"),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn nginx_source_nginx_conf_replaces_the_main_configuration() {
    let (image, _) = stand_in("nginx");
    let (_client, ns, pods) = namespace("cat-nginx-conf").await;
    // A main configuration as applications copy it from the image's documentation: the
    // distribution's pid file and temporary paths, an include of nginx-cfg/.
    let script = format!(
        "set -e\nmkdir -p /tmp/src/nginx-cfg\necho page > /tmp/src/index.html\n\
         printf 'add_header X-From-Cfg yes;\\n' > /tmp/src/nginx-cfg/h.conf\n\
         cat > /tmp/src/nginx.conf <<'EOF'\n\
         worker_processes 1;\n\
         pid /run/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           include /opt/app-root/etc/nginx.d/*.conf;\n\
           server {{\n\
             listen 8080;\n\
             location / {{ default_type text/plain; return 200 \"own main configuration\\n\"; }}\n\
           }}\n\
         }}\n\
         EOF\n\
         /usr/libexec/s2i/assemble\n{RUN}curl -fsi localhost:8080/\n"
    );
    let log = succeeds(&pods, "conf", &image, &[], &script).await;
    assert_shows(
        &log,
        &[
            ("Replacing the main configuration", "assemble's message"),
            (
                "own main configuration",
                "the source's nginx.conf is the server's",
            ),
            ("X-From-Cfg: yes", "nginx-cfg/ is included"),
        ],
    );
    ns.delete().await;
}
