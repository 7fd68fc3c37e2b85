<?php
// The migration migrate-database.sh runs: the page_views table, if the environment names a
// database (the init container's DATABASE_ENGINE is the database's name in the templates, so
// anything but postgresql means MySQL, as the app reads it).
declare(strict_types=1);

require __DIR__ . '/src/PageViews.php';

$config = App\PageViews::fromEnvironment();
if ($config === null) {
    echo "no database configured: nothing to migrate\n";
    exit(0);
}
try {
    $db = new PDO(App\PageViews::dsn($config), $config['user'], $config['password'], [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_TIMEOUT => 2,
    ]);
    $id = $config['engine'] === 'postgresql' ? 'id SERIAL PRIMARY KEY' : 'id INT AUTO_INCREMENT PRIMARY KEY';
    $db->exec("CREATE TABLE IF NOT EXISTS page_views ({$id}, viewed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    echo "page_views is ready\n";
} catch (PDOException $e) {
    fwrite(STDERR, "waiting for the database: {$e->getMessage()}\n");
    exit(1);
}
