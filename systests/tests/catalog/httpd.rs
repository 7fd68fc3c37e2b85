//! The Apache httpd builder (sclorg's httpd-container S2I contract).

use crate::*;

/// The quickstart sample (examples/quickstarts/httpd-site) as assemble finds it in /tmp/src, plus
/// an `.htaccess` (which the image must honour).
fn sample_source() -> String {
    format!(
        "mkdir -p /tmp/src/httpd-cfg\n\
         cat > /tmp/src/index.html <<'EOF_INDEX'\n{}EOF_INDEX\n\
         cat > /tmp/src/health.txt <<'EOF_HEALTH'\n{}EOF_HEALTH\n\
         cat > /tmp/src/httpd-cfg/sample.conf <<'EOF_CONF'\n{}EOF_CONF\n\
         printf 'Redirect 302 /old.html /index.html\\n' > /tmp/src/.htaccess\n",
        include_str!("../../../examples/quickstarts/httpd-site/index.html"),
        include_str!("../../../examples/quickstarts/httpd-site/health.txt"),
        include_str!("../../../examples/quickstarts/httpd-site/httpd-cfg/sample.conf"),
    )
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn httpd_builder_labels_user_and_environment() {
    let (image, config) = stand_in("httpd");
    assert_builder_labels(&config);
    assert!(labels(&config)["io.openshift.tags"].contains("httpd"), "{config}");
    let (_client, ns, pods) = namespace("cat-httpd").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "usage"],
        "apache2 -v | head -n 1",
    )
    .await;
    assert_says(&log, &["Apache/2.4"]);
    // Its own command is the usage, as sclorg's.
    let (phase, log) = run(&pods, "usage", &image, &[], None).await;
    assert_eq!(phase, "Succeeded", "{log}");
    assert_says(&log, &["httpd-cfg/*.conf"]);
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn httpd_assemble_installs_httpd_cfg_and_run_serves_the_site_on_8080() {
    let (image, _) = stand_in("httpd");
    let (_client, ns, pods) = namespace("cat-httpd-run").await;
    let script = format!(
        "set -e\n{}\n/usr/libexec/s2i/assemble\n\
         /usr/libexec/s2i/run &\n\
         for i in $(seq 1 100); do curl -fs -o /dev/null localhost:8080/ && break; sleep 0.2; done\n\
         curl -fsi localhost:8080/\n\
         echo \"health: $(curl -fs localhost:8080/health)\"\n\
         curl -s -o /dev/null -w 'old: %{{http_code}} %{{redirect_url}}\\n' localhost:8080/old.html\n\
         curl -s -o /dev/null -w 'cfg: %{{http_code}}\\n' localhost:8080/httpd-cfg/sample.conf\n\
         curl -s -o /dev/null -w 'htaccess: %{{http_code}}\\n' localhost:8080/.htaccess\n",
        sample_source()
    );
    let log = succeeds(&pods, "site", &image, &[], &script).await;
    assert_shows(
        &log,
        &[
            ("Installing the configuration of httpd-cfg/", "assemble's message"),
            ("Welcome to your static httpd site on Slipway", "the page"),
            ("X-Slipway-Sample: httpd-site", "httpd-cfg/sample.conf's header"),
            ("health: ok", "httpd-cfg/sample.conf's /health"),
            (
                "old: 302 http://localhost:8080/index.html",
                ".htaccess is honoured",
            ),
            ("cfg: 403", "the config directory is not served"),
            ("htaccess: 403", "the .htaccess is not served"),
            (
                "\"GET /health HTTP/1.1\" 200",
                "the access log is the container's output",
            ),
        ],
    );
    ns.delete().await;
}
