# Slipway's Dancer quickstart: a Dancer2 application whose front page records a view in MySQL
# (MariaDB) and shows the number of views read back from it. The database settings are those
# OpenShift's dancer-mysql templates give the application: DATABASE_SERVICE_NAME (the host is the
# service's <NAME>_SERVICE_HOST variable, else the service name itself; the port
# <NAME>_SERVICE_PORT, else 3306), MYSQL_USER, MYSQL_PASSWORD and MYSQL_DATABASE. Without
# DATABASE_SERVICE_NAME (the dancer-example template) the page says that no database is
# configured.
package Quickstart;
use strict;
use warnings;
use Dancer2;
use DBI;

our $VERSION = '1.0';

# The database the templates describe, or undef.
sub database_config {
    my $service = $ENV{DATABASE_SERVICE_NAME} or return;
    (my $prefix = uc $service) =~ s/-/_/g;
    return {
        service  => $service,
        host     => $ENV{"${prefix}_SERVICE_HOST"} || $service,
        port     => $ENV{"${prefix}_SERVICE_PORT"} || 3306,
        user     => $ENV{MYSQL_USER},
        password => $ENV{MYSQL_PASSWORD},
        database => $ENV{MYSQL_DATABASE},
    };
}

# Records one view and returns how many there are, read back from the database.
sub record_view {
    my ($config) = @_;
    my $dsn = "DBI:mysql:database=$config->{database};host=$config->{host};port=$config->{port}"
      . ';mysql_connect_timeout=2';
    my $dbh = DBI->connect($dsn, $config->{user}, $config->{password},
        { RaiseError => 1, PrintError => 0, AutoCommit => 1 });
    $dbh->do('CREATE TABLE IF NOT EXISTS page_views ('
          . 'id INT AUTO_INCREMENT PRIMARY KEY, '
          . 'viewed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)');
    $dbh->do('INSERT INTO page_views () VALUES ()');
    my ($count) = $dbh->selectrow_array('SELECT COUNT(*) FROM page_views');
    $dbh->disconnect;
    return $count;
}

sub escape_html {
    my ($s) = @_;
    $s = '' unless defined $s;
    $s =~ s/([&<>"'])/'&#' . ord($1) . ';'/ge;
    return $s;
}

sub page {
    my ($body) = @_;
    return <<"HTML";
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Dancer on Slipway</title></head>
<body>
<h1>Welcome to your Dancer application on Slipway</h1>
$body
<p>Perl ${\ escape_html(sprintf '%vd', $^V)}, Dancer2 ${\ escape_html($Dancer2::VERSION)}</p>
</body>
</html>
HTML
}

get '/' => sub {
    my $config = database_config();
    return page('<p>No database is configured: set DATABASE_SERVICE_NAME to count page views.</p>')
      unless $config;
    my $count = eval { record_view($config) };
    if (my $err = $@) {
        $err =~ s/\s+at \S+ line \d+.*//s;
        warn "the database did not answer: $err\n";
        status 503;
        return page('<p>The database '
              . escape_html("$config->{service} ($config->{host}:$config->{port})")
              . ' did not answer: ' . escape_html($err) . '</p>');
    }
    return page('<p>Page views: ' . escape_html($count) . '</p>'
          . '<p>Database: mysql at ' . escape_html("$config->{host}:$config->{port}") . '</p>');
};

get '/health' => sub {
    content_type 'text/plain';
    return "OK\n";
};

1;
