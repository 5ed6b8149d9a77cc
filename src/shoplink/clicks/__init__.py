"""Click resolution: /r/{code} redirects to product pages, and every click becomes a stream event."""
