# The templates' post-commit hook (`perl -I extlib/lib/perl5 -I lib t/*`): the application
# loads and answers its pages without a database.
use strict;
use warnings;
use Test::More tests => 6;
use Plack::Test;
use HTTP::Request::Common qw(GET);

delete $ENV{DATABASE_SERVICE_NAME};
use_ok('Quickstart');

my $test = Plack::Test->create(Quickstart->to_app);

my $res = $test->request(GET '/');
ok($res->is_success, 'GET / succeeds without a database');
like($res->content, qr/No database is configured/, 'GET / says that no database is configured');

$res = $test->request(GET '/health');
ok($res->is_success, 'GET /health succeeds');
is($res->content, "OK\n", 'GET /health answers OK');

is($test->request(GET '/no-such-page')->code, 404, 'an unknown page is 404');
