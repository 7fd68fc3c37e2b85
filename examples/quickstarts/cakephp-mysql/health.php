<?php
// The mysql templates' readiness and liveness probe: the server runs PHP.
header('Content-Type: text/plain');
echo "OK\n";
