// The API reference page: Swagger UI over our own schema. A signed-in browser calls the API
// with its session, so writes carry the CSRF token; a pasted bearer token needs none.
(function () {
  const root = document.getElementById("swagger-ui");
  const csrf = root.dataset.csrfToken;
  window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (csrf && !request.headers.Authorization) request.headers["X-CSRFToken"] = csrf;
      return request;
    },
  });
})();
