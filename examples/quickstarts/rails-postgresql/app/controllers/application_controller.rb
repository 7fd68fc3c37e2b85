class ApplicationController < ActionController::Base
  private

  # A page of the application, around `body` (HTML).
  def page(title, body, status: :ok)
    html = <<~HTML
      <!doctype html>
      <html lang="en">
      <head><meta charset="utf-8"><title>#{ERB::Util.h(title)}</title></head>
      <body>
      <h1>Welcome to your Rails application on Slipway</h1>
      #{body}
      <p>Ruby #{ERB::Util.h(RUBY_VERSION)}, Rails #{ERB::Util.h(Rails.version)}, #{ERB::Util.h(Rails.env)}</p>
      </body>
      </html>
    HTML
    render html: html.html_safe, status: status
  end

  # What the page says when the database does not answer (status 503).
  def database_error(error)
    logger.error "the database did not answer: #{error.message}"
    config = ActiveRecord::Base.connection_db_config.configuration_hash
    page 'Rails on Slipway',
         "<p>The database #{ERB::Util.h("#{config[:host]}:#{config[:port]}")} did not answer: " \
         "#{ERB::Util.h(error.message.lines.first.to_s.strip)}</p>",
         status: :service_unavailable
  end
end
