require 'bundler/setup'
