from django.db import models


class PageView(models.Model):
    """One visit of the front page: a row written to the database on every visit."""

    hostname = models.CharField(max_length=64)
    timestamp = models.DateTimeField(auto_now_add=True)
