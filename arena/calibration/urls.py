from django.urls import path

from arena.calibration.views import calibration_api, calibration_page, calibration_progress

urlpatterns = [
    path("calibration/", calibration_page, name="calibration"),
    path("api/calibration/", calibration_api, name="calibration_api"),
    path("api/calibration/progress/", calibration_progress, name="calibration_progress"),
]
