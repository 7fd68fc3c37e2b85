#!/bin/sh
# composer-packages.sh DIR: makes DIR the image's offline Composer repository (a `path`
# repository, one directory per package) of packages that stand for Debian's PHP libraries, so
# that `composer install` resolves them with no Packagist: each has the Composer name and the
# version of the library Debian installs, autoloads Debian's copy and links its commands.
#   phpunit/phpunit: Debian's PHPUnit (/usr/share/php/PHPUnit), its command vendor/bin/phpunit.
set -eu
dir=$1
version=$(phpunit --version | sed -n 's/^PHPUnit \([0-9][0-9.]*\).*/\1/p')
[ -n "$version" ] || { echo "composer-packages.sh: no PHPUnit version" >&2; exit 1; }
autoload=/usr/share/php/PHPUnit/Autoload.php
[ -f "$autoload" ] || { echo "composer-packages.sh: no $autoload" >&2; exit 1; }
mkdir -p "$dir/phpunit/bin"
cat > "$dir/phpunit/composer.json" <<JSON
{
    "name": "phpunit/phpunit",
    "description": "The PHP Unit Testing framework (Debian's phpunit package, from /usr/share/php/PHPUnit).",
    "type": "library",
    "license": "BSD-3-Clause",
    "version": "$version",
    "require": {"php": ">=7.3"},
    "autoload": {"files": ["autoload.php"]},
    "bin": ["bin/phpunit"]
}
JSON
cat > "$dir/phpunit/autoload.php" <<PHP
<?php
// Debian's PHPUnit classes (and those of the libraries it uses).
require_once '$autoload';
PHP
cat > "$dir/phpunit/bin/phpunit" <<PHP
#!/usr/bin/env php
<?php
// PHPUnit's command, run from Debian's copy (as /usr/bin/phpunit does).
if (!ini_get('date.timezone')) {
    ini_set('date.timezone', 'UTC');
}
// As PHPUnit's own command does, the project's Composer autoloader (vendor/autoload.php, which
// loads Debian's PHPUnit too) is loaded first.
foreach ([\$GLOBALS['_composer_autoload_path'] ?? '', __DIR__ . '/../../../autoload.php'] as \$file) {
    if (\$file !== '' && file_exists(\$file) && !defined('PHPUNIT_COMPOSER_INSTALL')) {
        define('PHPUNIT_COMPOSER_INSTALL', \$file);
    }
}
if (!defined('PHPUNIT_COMPOSER_INSTALL')) {
    define('PHPUNIT_COMPOSER_INSTALL', '$autoload');
}
unset(\$file);
require_once PHPUNIT_COMPOSER_INSTALL;
require_once '$autoload';
exit(PHPUnit\TextUI\Command::main());
PHP
chmod 755 "$dir/phpunit/bin/phpunit"
echo "composer-packages.sh: phpunit/phpunit $version (autoloader $autoload)"
