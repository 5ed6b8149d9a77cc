"""Web pages served by the app: sign-in sessions, studio, player widget, host console, dashboard."""
