<?php
// Slipway's CakePHP quickstart: a page whose every visit records a view in the database and
// shows the number of views read back from it. The database settings are those OpenShift's
// cakephp-mysql templates give the application: DATABASE_SERVICE_NAME (the host is the service's
// <NAME>_SERVICE_HOST variable, else the service name itself; the port <NAME>_SERVICE_PORT, else
// the engine's), DATABASE_ENGINE (mysql or postgresql), DATABASE_NAME, DATABASE_USER and
// DATABASE_PASSWORD. Without DATABASE_SERVICE_NAME (the cakephp-example template) the page says
// that no database is configured.
declare(strict_types=1);

namespace App;

use PDO;

final class PageViews
{
    /**
     * The database the templates describe, or null.
     *
     * @param array<string, string|false> $env
     * @return array<string, string>|null
     */
    public static function config(array $env): ?array
    {
        $service = $env['DATABASE_SERVICE_NAME'] ?? '';
        if ($service === '' || $service === false) {
            return null;
        }
        $engine = strtolower((string) ($env['DATABASE_ENGINE'] ?? '')) ?: 'mysql';
        $engine = $engine === 'postgres' ? 'postgresql' : $engine;
        $prefix = strtoupper(str_replace('-', '_', (string) $service));
        return [
            'service' => (string) $service,
            'engine' => $engine,
            'host' => (string) (($env["{$prefix}_SERVICE_HOST"] ?? '') ?: $service),
            'port' => (string) (($env["{$prefix}_SERVICE_PORT"] ?? '') ?: ($engine === 'postgresql' ? '5432' : '3306')),
            'name' => (string) ($env['DATABASE_NAME'] ?? ''),
            'user' => (string) ($env['DATABASE_USER'] ?? ''),
            'password' => (string) ($env['DATABASE_PASSWORD'] ?? ''),
        ];
    }

    /** The configuration of this process's environment. */
    public static function fromEnvironment(): ?array
    {
        $env = [];
        foreach (['DATABASE_SERVICE_NAME', 'DATABASE_ENGINE', 'DATABASE_NAME', 'DATABASE_USER', 'DATABASE_PASSWORD'] as $name) {
            $env[$name] = getenv($name);
        }
        $service = $env['DATABASE_SERVICE_NAME'];
        if (is_string($service) && $service !== '') {
            $prefix = strtoupper(str_replace('-', '_', $service));
            $env["{$prefix}_SERVICE_HOST"] = getenv("{$prefix}_SERVICE_HOST");
            $env["{$prefix}_SERVICE_PORT"] = getenv("{$prefix}_SERVICE_PORT");
        }
        return self::config($env);
    }

    /** @param array<string, string> $config */
    public static function dsn(array $config): string
    {
        $driver = $config['engine'] === 'postgresql' ? 'pgsql' : 'mysql';
        return "{$driver}:host={$config['host']};port={$config['port']};dbname={$config['name']}";
    }

    /**
     * Records one view and returns how many there are, read back from the database.
     *
     * @param array<string, string> $config
     */
    public static function record(array $config): int
    {
        $db = new PDO(self::dsn($config), $config['user'], $config['password'], [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_TIMEOUT => 2, // the templates' probes wait 3 s
        ]);
        $id = $config['engine'] === 'postgresql' ? 'id SERIAL PRIMARY KEY' : 'id INT AUTO_INCREMENT PRIMARY KEY';
        $db->exec("CREATE TABLE IF NOT EXISTS page_views ({$id}, viewed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
        $db->exec('INSERT INTO page_views (viewed_at) VALUES (CURRENT_TIMESTAMP)');
        return (int) $db->query('SELECT COUNT(*) FROM page_views')->fetchColumn();
    }

    /**
     * The front page: its status and HTML.
     *
     * @param array<string, string>|null $config
     * @param callable(array<string, string>): int $record
     * @return array{0: int, 1: string}
     */
    public static function page(?array $config, callable $record): array
    {
        if ($config === null) {
            return [200, self::html('<p>No database is configured: set DATABASE_SERVICE_NAME to count page views.</p>')];
        }
        $where = self::escape("{$config['service']} ({$config['host']}:{$config['port']})");
        try {
            $count = $record($config);
        } catch (\Throwable $e) {
            error_log('the database did not answer: ' . $e->getMessage());
            return [503, self::html("<p>The database {$where} did not answer: " . self::escape($e->getMessage()) . '</p>')];
        }
        return [200, self::html('<p>Page views: ' . $count . '</p><p>Database: ' . self::escape($config['engine']) . " at {$where}</p>")];
    }

    public static function escape(string $s): string
    {
        return htmlspecialchars($s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
    }

    private static function html(string $body): string
    {
        $php = self::escape(PHP_VERSION);
        return <<<HTML
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>PHP on Slipway</title></head>
<body>
<h1>Welcome to your PHP application on Slipway</h1>
{$body}
<p>PHP {$php}</p>
</body>
</html>

HTML;
    }
}
