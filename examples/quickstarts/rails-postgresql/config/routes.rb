Rails.application.routes.draw do
  root 'welcome#index'
  get '/health', to: 'welcome#health'
  resources :articles, only: %i[index show]
end
