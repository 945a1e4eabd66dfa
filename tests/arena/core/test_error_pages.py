"""With debug off (the default) a failing view answers the site's 500 page, never a trace."""

import pytest
from django.test import Client, override_settings
from django.urls import path


def _broken(request):
    raise RuntimeError("secret detail of the failure")


urlpatterns = [path("broken/", _broken)]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_shows_the_sites_500_page_without_details():
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on the server" in html
    assert "secret detail" not in html and "Traceback" not in html
