import os
import socket

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render

from .models import PageView


def index(request):
    """Writes a page view, reads the count back: the page proves the database round trip."""
    PageView.objects.create(hostname=socket.gethostname()[:64])
    return render(
        request,
        "welcome/index.html",
        {
            "hostname": socket.gethostname(),
            "database": connection.vendor,
            "database_name": settings.DATABASES["default"]["NAME"],
            "count": PageView.objects.count(),
            "python": os.sys.version.split()[0],
        },
    )


def health(request):
    return HttpResponse(PageView.objects.count())
