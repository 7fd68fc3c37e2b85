# The Rack application Puma serves.
require_relative 'config/environment'

run Rails.application
