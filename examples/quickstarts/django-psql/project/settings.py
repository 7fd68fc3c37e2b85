"""Settings of the Django sample: the database comes from the environment the quickstart
templates set (DATABASE_SERVICE_NAME, DATABASE_ENGINE, DATABASE_NAME, DATABASE_USER,
DATABASE_PASSWORD); without DATABASE_SERVICE_NAME it is SQLite (as in the build's post-commit
test run)."""
import os

from . import database

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = os.getenv("DJANGO_SECRET_KEY", "insecure-development-key")
DEBUG = bool(os.getenv("DJANGO_DEBUG"))
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "welcome",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]
WSGI_APPLICATION = "project.wsgi.application"
DATABASES = {"default": database.config(BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = os.path.join(BASE_DIR, "staticfiles")
