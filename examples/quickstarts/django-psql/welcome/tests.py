from django.test import TestCase

from .models import PageView


class PageViewTest(TestCase):
    def test_a_visit_writes_a_page_view(self):
        before = PageView.objects.count()
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(PageView.objects.count(), before + 1)
        self.assertContains(response, f"Page views: {before + 1}")

    def test_health_counts_the_views(self):
        PageView.objects.create(hostname="test")
        self.assertEqual(self.client.get("/health").content, b"1")
