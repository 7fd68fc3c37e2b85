# The front page: every visit records a view in PostgreSQL and shows the count read back.
class WelcomeController < ApplicationController
  def index
    PageView.create!
    count = PageView.count
    config = ActiveRecord::Base.connection_db_config.configuration_hash
    page 'Rails on Slipway',
         "<p>Page views: #{count}</p>" \
         "<p>Database: postgresql at #{ERB::Util.h("#{config[:host]}:#{config[:port]}")}</p>" \
         '<p><a href="/articles">Articles</a></p>'
  rescue ActiveRecord::ActiveRecordError, PG::Error => e
    database_error(e)
  end

  def health
    render plain: "OK\n"
  end
end
