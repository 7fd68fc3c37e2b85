# The PSGI application the Perl builder serves (its run script finds this file).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use lib File::Spec->catdir(dirname(File::Spec->rel2abs(__FILE__)), 'lib');

use Quickstart;
Quickstart->to_app;
