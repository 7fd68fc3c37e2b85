# The articles (the templates' probes read /articles, as in OpenShift's rails-ex sample).
class ArticlesController < ApplicationController
  def index
    items = Article.order(:id).map do |a|
      "<li><a href=\"/articles/#{a.id}\">#{ERB::Util.h(a.title)}</a></li>"
    end
    page 'Articles', "<h2>Articles</h2><p>#{items.size} articles</p><ul>#{items.join}</ul>"
  rescue ActiveRecord::ActiveRecordError, PG::Error => e
    database_error(e)
  end

  def show
    article = Article.find(params[:id])
    page article.title, "<h2>#{ERB::Util.h(article.title)}</h2><p>#{ERB::Util.h(article.body)}</p>"
  rescue ActiveRecord::RecordNotFound
    page 'Articles', '<p>No such article.</p>', status: :not_found
  end
end
