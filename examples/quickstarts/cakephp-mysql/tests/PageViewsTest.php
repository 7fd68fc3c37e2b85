<?php
// The templates' post-commit hook (./vendor/bin/phpunit): the page without and with a database
// (the database is a stand-in function: no server is needed).
declare(strict_types=1);

namespace App\Test;

use App\PageViews;
use PHPUnit\Framework\TestCase;

final class PageViewsTest extends TestCase
{
    public function testWithoutDatabaseServiceNameThereIsNoDatabase(): void
    {
        $this->assertNull(PageViews::config([]));
        [$status, $html] = PageViews::page(null, function (): int {
            $this->fail('no database to record in');
        });
        $this->assertSame(200, $status);
        $this->assertStringContainsString('No database is configured', $html);
    }

    public function testTheServiceVariablesNameTheHost(): void
    {
        $config = PageViews::config([
            'DATABASE_SERVICE_NAME' => 'mysql',
            'DATABASE_ENGINE' => 'mysql',
            'DATABASE_NAME' => 'default',
            'DATABASE_USER' => 'cakephp',
            'DATABASE_PASSWORD' => 'secret',
            'MYSQL_SERVICE_HOST' => '10.0.0.7',
        ]);
        $this->assertSame('10.0.0.7', $config['host']);
        $this->assertSame('3306', $config['port']);
        $this->assertSame('mysql:host=10.0.0.7;port=3306;dbname=default', PageViews::dsn($config));
        $pg = PageViews::config(['DATABASE_SERVICE_NAME' => 'postgresql', 'DATABASE_ENGINE' => 'postgresql']);
        $this->assertSame('postgresql', $pg['host']);
        $this->assertSame('pgsql:host=postgresql;port=5432;dbname=', PageViews::dsn($pg));
    }

    public function testThePageShowsTheCountReadBack(): void
    {
        $config = PageViews::config(['DATABASE_SERVICE_NAME' => 'mysql']);
        [$status, $html] = PageViews::page($config, fn (): int => 42);
        $this->assertSame(200, $status);
        $this->assertStringContainsString('Page views: 42', $html);
    }

    public function testADatabaseThatDoesNotAnswerIs503(): void
    {
        $config = PageViews::config(['DATABASE_SERVICE_NAME' => 'mysql']);
        $log = ini_set('error_log', '/dev/null'); // the page logs the error
        try {
            [$status, $html] = PageViews::page($config, function (): int {
                throw new \RuntimeException('connection refused');
            });
        } finally {
            ini_set('error_log', (string) $log);
        }
        $this->assertSame(503, $status);
        $this->assertStringContainsString('did not answer: connection refused', $html);
    }
}
