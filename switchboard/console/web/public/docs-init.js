// Swagger UI over this server's own OpenAPI document, with no inline script (the page's CSP admits none).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
