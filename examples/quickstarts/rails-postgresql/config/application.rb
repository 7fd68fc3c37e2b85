# Slipway's Rails quickstart: the parts of Rails it uses (Active Record and Action Controller),
# configured in this one file for every environment; RAILS_ENV (production in the templates)
# chooses the behaviour, SECRET_KEY_BASE is the template's secret.
require_relative 'boot'

require 'rails'
require 'active_record/railtie'
require 'action_controller/railtie'

Bundler.require(*Rails.groups)

module Quickstart
  class Application < Rails::Application
    config.load_defaults 6.1
    production = Rails.env.production?
    config.cache_classes = production
    config.eager_load = production
    config.consider_all_requests_local = !production
    config.secret_key_base = ENV['SECRET_KEY_BASE'] unless ENV['SECRET_KEY_BASE'].to_s.empty?
    # Routes answer any host name (the template's route, the service, the probes' pod IP).
    config.hosts.clear
    config.public_file_server.enabled = true
    config.logger = ActiveSupport::TaggedLogging.new(ActiveSupport::Logger.new($stdout))
    config.log_level = production ? :info : :debug
    config.active_record.dump_schema_after_migration = false
  end
end
