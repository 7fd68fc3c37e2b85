//! The PHP builder (sclorg's s2i-php-container contract).

use crate::*;

/// The S2I source of a PHP application with a composer.json that wants PHPUnit and a test of
/// it, its pages in public/ (the DOCUMENT_ROOT), as assemble finds it in /tmp/src.
const APP: &str = r#"
mkdir -p /tmp/src/public /tmp/src/tests
cat > /tmp/src/composer.json <<'JSON'
{"name": "slipway/hello", "require": {"php": ">=7.4"},
 "require-dev": {"phpunit/phpunit": "^9.5"},
 "autoload": {"psr-4": {"Hello\\": "src/"}}}
JSON
mkdir -p /tmp/src/src
cat > /tmp/src/src/Greeting.php <<'PHP'
<?php
namespace Hello;
final class Greeting { public static function of(string $path): string { return "hello from $path on PHP"; } }
PHP
cat > /tmp/src/tests/GreetingTest.php <<'PHP'
<?php
final class GreetingTest extends PHPUnit\Framework\TestCase {
    public function testGreets(): void { $this->assertSame('hello from /x on PHP', Hello\Greeting::of('/x')); }
}
PHP
cat > /tmp/src/public/index.php <<'PHP'
<?php
require __DIR__ . '/../vendor/autoload.php';
echo Hello\Greeting::of(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)), "\n";
echo 'revalidate_freq=', ini_get('opcache.revalidate_freq'), ' memory_limit=', ini_get('memory_limit'), "\n";
echo 'GREETING=', getenv('GREETING'), "\n";
PHP
"#;

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn php_builder_labels_user_and_environment() {
    let (image, config) = stand_in("php");
    assert_builder_labels(&config);
    let labels = labels(&config);
    assert!(labels["io.openshift.tags"].contains("php"), "{labels:?}");
    let env = environment(&config);
    assert!(env["PHP_VERSION"].starts_with("8."), "{env:?}");
    assert_eq!(env["DOCUMENT_ROOT"], "/");
    let (_client, ns, pods) = namespace("cat-php").await;
    let log = builder_identity(
        &pods,
        &image,
        &["assemble", "run", "usage"],
        "php -m; command -v php composer apache2",
    )
    .await;
    // The extensions the CakePHP quickstart's database and framework use.
    for module in ["pdo_mysql", "pdo_pgsql", "intl", "mbstring", "Zend OPcache"] {
        assert!(log.lines().any(|l| l == module), "no {module}:\n{log}");
    }
    assert_says(&log, &["/usr/bin/php", "/usr/bin/composer", "/usr/sbin/apache2"]);
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn php_assemble_runs_composer_offline_and_run_serves_the_document_root() {
    let (image, _) = stand_in("php");
    let (_client, ns, pods) = namespace("cat-php-run").await;
    // The CakePHP templates' post-commit hook runs ./vendor/bin/phpunit from $HOME.
    let script = format!(
        "set -e\n{APP}\n/usr/libexec/s2i/assemble\n\
         cd $HOME && ./vendor/bin/phpunit tests\n\
         /usr/libexec/s2i/run &\n{}",
        fetch("/index.php/x"),
    );
    let log = succeeds(
        &pods,
        "assemble",
        &image,
        &[
            ("COMPOSER_MIRROR", ""),
            ("DOCUMENT_ROOT", "/public"),
            ("OPCACHE_REVALIDATE_FREQ", "7"),
            ("PHP_MEMORY_LIMIT", "96M"),
            ("GREETING", "from the environment"),
        ],
        &script,
    )
    .await;
    assert_shows(
        &log,
        &[
            ("No COMPOSER_MIRROR", "assemble's message"),
            (
                "Installing phpunit/phpunit",
                "Composer installed the development requirement",
            ),
            ("OK (1 test, 1 assertion)", "phpunit ran"),
            ("document root /opt/app-root/src/public", "run's message"),
            (
                "hello from /index.php/x on PHP",
                "httpd served DOCUMENT_ROOT on 8080",
            ),
            (
                "revalidate_freq=7 memory_limit=96M",
                "php.ini settings come from the environment",
            ),
            (
                "GREETING=from the environment",
                "the application sees the container's environment",
            ),
        ],
    );
    ns.delete().await;
}

#[ignore = "needs the catalog images and the real node; run with `make e2e`"]
#[tokio::test]
async fn php_assemble_fails_offline_on_a_missing_package_and_uses_composer_mirror_when_given() {
    let (image, _) = stand_in("php");
    let (_client, ns, pods) = namespace("cat-php-mirror").await;
    let missing = format!(
        "{APP}\nsed -i 's|\"php\": \">=7.4\"|\"php\": \">=7.4\", \"slipway/missing\": \"^1.0\"|' \
         /tmp/src/composer.json\n/usr/libexec/s2i/assemble"
    );
    // Offline: the package is not in the image's repository, and nothing is fetched.
    fails_saying(
        &pods,
        "offline",
        &image,
        &[],
        Some(&missing),
        &["slipway/missing"],
        &[],
    )
    .await;
    // With COMPOSER_MIRROR: that repository is where Composer looked (and, unreachable, why the
    // install failed).
    let mirror = [("COMPOSER_MIRROR", "http://127.0.0.1:9/packagist")];
    let says = [
        "Using the Composer repository http://127.0.0.1:9/packagist",
        "while downloading http://127.0.0.1:9/packagist/",
    ];
    fails_saying(
        &pods,
        "mirror",
        &image,
        &mirror,
        Some(&missing),
        &says,
        &["offline"],
    )
    .await;
    ns.delete().await;
}
