<?php
// The front page: records a view and shows the count (src/PageViews.php).
declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

use App\PageViews;

[$status, $html] = PageViews::page(PageViews::fromEnvironment(), [PageViews::class, 'record']);
http_response_code($status);
header('Content-Type: text/html; charset=utf-8');
echo $html;
