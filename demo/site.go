package demo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
)

// product is one catalogue entry.
type product struct {
	SKU   string  `json:"sku"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

func demoCatalogue() []product {
	return []product{
		{SKU: "123", Name: "LEGO Classic Creative Brick Box", Price: 19.99},
		{SKU: "456", Name: "Wooden Train Set", Price: 34.50},
		{SKU: "789", Name: "Jigsaw Puzzle, 1000 pieces", Price: 12.00},
	}
}

// page is a pre-rendered response: handlers only copy bytes.
type page struct {
	body   []byte
	ctype  []string
	length []string
	cache  []string
}

func newPage(ctype string, body []byte, cache string) *page {
	return &page{
		body:   body,
		ctype:  []string{ctype},
		length: []string{strconv.Itoa(len(body))},
		cache:  []string{cache},
	}
}

// serve writes p with status code. Header value slices are shared between
// requests (net/http only reads them) to keep the hot path allocation-light.
func (p *page) serve(w http.ResponseWriter, code int) {
	h := w.Header()
	h["Content-Type"] = p.ctype
	h["Content-Length"] = p.length
	h["Cache-Control"] = p.cache
	w.WriteHeader(code)
	_, _ = w.Write(p.body)
}

const (
	ctHTML  = "text/html; charset=utf-8"
	ctJSON  = "application/json"
	ctText  = "text/plain; charset=utf-8"
	ctJS    = "text/javascript; charset=utf-8"
	ctCSS   = "text/css; charset=utf-8"
	ctPNG   = "image/png"
	noStore = "no-store"
	public  = "public, max-age=60"
)

// site holds every pre-rendered page of the three domains.
type site struct {
	catalogue []product
	password  []byte
	tokenKey  []byte

	home, category, notFoundHTML, healthz *page
	products                              map[string]*page
	searchHead, searchTail                []byte

	apiProducts, apiCart, apiUnauthorized, apiBadRequest, apiNotFound *page

	appJS, styleCSS, logoPNG, staticNotFound *page

	unavailable *page
}

// newSite renders the pages for a shop whose HTTPS URLs are built by urlFor.
func newSite(urlFor func(host, path string) string, password string, tokenKey []byte) (*site, error) {
	s := &site{catalogue: demoCatalogue(), password: []byte(password), tokenKey: tokenKey}
	static := func(p string) string { return urlFor(StaticHost, p) }

	head := func(title string) string {
		return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + html.EscapeString(title) + ` · Demo Shop</title>
<link rel="stylesheet" href="` + static("/style.css") + `">
<script src="` + static("/app.js") + `" defer></script>
</head>
<body>
<header>
<a href="/" class="brand"><img src="` + static("/logo.png") + `" alt="Demo Shop" width="48" height="48"> Demo Shop</a>
<form action="/search" method="get" role="search"><input name="q" type="search" placeholder="Search toys" aria-label="Search"> <button type="submit">Search</button></form>
<span class="cart">Cart: <span id="cart-count">0</span></span>
</header>
<main>
`
	}
	const foot = "</main>\n<footer>vantage demo shop, served from loopback</footer>\n</body>\n</html>\n"

	var b strings.Builder
	b.WriteString(head("Home"))
	b.WriteString("<h1>Toys for every evening</h1>\n<ul class=\"products\">\n")
	for _, p := range s.catalogue {
		fmt.Fprintf(&b, "<li><a href=\"/product/%s\">%s</a> <span class=\"price\">€%.2f</span> <a class=\"button\" href=\"/product/%s\">Add to cart</a></li>\n",
			p.SKU, html.EscapeString(p.Name), p.Price, p.SKU)
	}
	b.WriteString("</ul>\n" + foot)
	s.home = newPage(ctHTML, []byte(b.String()), noStore)

	b.Reset()
	b.WriteString(head("Toys"))
	b.WriteString("<h1>Toys</h1>\n<ul class=\"products\">\n")
	for _, p := range s.catalogue {
		fmt.Fprintf(&b, "<li><a href=\"/product/%s\">%s</a> <span class=\"price\">€%.2f</span></li>\n", p.SKU, html.EscapeString(p.Name), p.Price)
	}
	fmt.Fprintf(&b, "</ul>\n<p class=\"count\">%d product(s)</p>\n%s", len(s.catalogue), foot)
	s.category = newPage(ctHTML, []byte(b.String()), noStore)

	s.products = make(map[string]*page, len(s.catalogue))
	for _, p := range s.catalogue {
		body := head(p.Name) + fmt.Sprintf(`<h1>%s</h1>
<p class="price">€%.2f</p>
<button id="add-to-cart" type="button" data-sku="%s">Add to cart</button>
`, html.EscapeString(p.Name), p.Price, p.SKU) + foot
		s.products[p.SKU] = newPage(ctHTML, []byte(body), noStore)
	}
	s.notFoundHTML = newPage(ctHTML, []byte(head("Not found")+"<h1>Page not found</h1>\n<p><a href=\"/\">Back to the shop</a></p>\n"+foot), noStore)
	s.healthz = newPage(ctText, []byte("ok\n"), noStore)

	s.searchHead = []byte(head("Search") + "<h1>Search results for “")
	s.searchTail = []byte(foot)

	js, err := json.Marshal(s.catalogue)
	if err != nil {
		return nil, err
	}
	s.apiProducts = newPage(ctJSON, append(js, '\n'), noStore)
	s.apiCart = newPage(ctJSON, []byte(`{"items":[{"sku":"123","qty":1}],"total":19.99}`+"\n"), noStore)
	s.apiUnauthorized = newPage(ctJSON, []byte(`{"error":"invalid credentials"}`+"\n"), noStore)
	s.apiBadRequest = newPage(ctJSON, []byte(`{"error":"want a JSON body {\"user\":...,\"password\":...}"}`+"\n"), noStore)
	s.apiNotFound = newPage(ctJSON, []byte(`{"error":"not found"}`+"\n"), noStore)

	// The add-to-cart handler lives on the third-party domain on purpose:
	// when static.shop-cdn.test fails, the shop's journey breaks too.
	s.appJS = newPage(ctJS, []byte(`"use strict";
(function () {
  var count = document.getElementById("cart-count");
  var button = document.getElementById("add-to-cart");
  if (!count || !button) { return; }
  button.addEventListener("click", function () {
    count.textContent = String((parseInt(count.textContent, 10) || 0) + 1);
  });
})();
`), public)
	s.styleCSS = newPage(ctCSS, []byte(`body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{display:flex;gap:1em;align-items:center;padding:.5em 1em;background:#f4f4f8}
.brand{font-weight:bold;text-decoration:none;color:inherit;display:flex;align-items:center;gap:.5em}
main{padding:1em}.price{color:#0a6}.button,button{background:#246;color:#fff;border:0;padding:.4em .8em;border-radius:4px}
footer{padding:1em;color:#888;font-size:small}
`), public)
	logo, err := renderLogo()
	if err != nil {
		return nil, err
	}
	s.logoPNG = newPage(ctPNG, logo, public)
	s.staticNotFound = newPage(ctText, []byte("404 page not found\n"), noStore)
	s.unavailable = newPage(ctText, []byte("service unavailable\n"), noStore)
	return s, nil
}

// renderLogo draws a small real PNG so browsers and size checks see an image.
func renderLogo() ([]byte, error) {
	const size = 48
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			c := color.NRGBA{R: 0x22, G: 0x44, B: 0x66, A: 0xff}
			if (x/8+y/8)%2 == 0 {
				c = color.NRGBA{R: 0xff, G: 0xaa, B: 0x00, A: 0xff}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("demo: logo: %w", err)
	}
	return buf.Bytes(), nil
}

// serveWWW is www.shop.test.
func (s *site) serveWWW(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == "/":
		s.home.serve(w, http.StatusOK)
	case p == "/healthz":
		s.healthz.serve(w, http.StatusOK)
	case p == "/search":
		s.serveSearch(w, r.URL.Query().Get("q"))
	case p == "/category/toys":
		s.category.serve(w, http.StatusOK)
	case strings.HasPrefix(p, "/product/"):
		if pg, ok := s.products[strings.TrimPrefix(p, "/product/")]; ok {
			pg.serve(w, http.StatusOK)
			return
		}
		s.notFoundHTML.serve(w, http.StatusNotFound)
	default:
		s.notFoundHTML.serve(w, http.StatusNotFound)
	}
}

func (s *site) serveSearch(w http.ResponseWriter, q string) {
	if len(q) > 200 {
		q = strings.ToValidUTF8(q[:200], "")
	}
	var b bytes.Buffer
	b.Grow(len(s.searchHead) + len(s.searchTail) + 512)
	b.Write(s.searchHead)
	b.WriteString(html.EscapeString(q))
	b.WriteString("”</h1>\n<ul class=\"results\">\n")
	needle := strings.ToLower(strings.TrimSpace(q))
	n := 0
	for _, p := range s.catalogue {
		if needle == "" || strings.Contains(strings.ToLower(p.Name), needle) {
			fmt.Fprintf(&b, "<li><a href=\"/product/%s\">%s</a> <span class=\"price\">€%.2f</span></li>\n", p.SKU, html.EscapeString(p.Name), p.Price)
			n++
		}
	}
	b.WriteString("</ul>\n")
	fmt.Fprintf(&b, "<p class=\"count\">%d result(s)</p>\n", n)
	b.Write(s.searchTail)
	h := w.Header()
	h.Set("Content-Type", ctHTML)
	h.Set("Cache-Control", noStore)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// serveAPI is api.shop.test.
func (s *site) serveAPI(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/login":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.login(w, r)
	case "/v1/cart":
		if !allowGet(w, r) {
			return
		}
		if !s.validToken(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shop"`)
			s.apiUnauthorized.serve(w, http.StatusUnauthorized)
			return
		}
		s.apiCart.serve(w, http.StatusOK)
	case "/v1/products":
		if !allowGet(w, r) {
			return
		}
		s.apiProducts.serve(w, http.StatusOK)
	case "/healthz":
		s.healthz.serve(w, http.StatusOK)
	default:
		s.apiNotFound.serve(w, http.StatusNotFound)
	}
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (s *site) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		s.apiBadRequest.serve(w, http.StatusBadRequest)
		return
	}
	if req.Password == "" || subtle.ConstantTimeCompare([]byte(req.Password), s.password) != 1 {
		s.apiUnauthorized.serve(w, http.StatusUnauthorized)
		return
	}
	body, err := json.Marshal(map[string]string{"token": s.token(req.User)})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	newPage(ctJSON, append(body, '\n'), noStore).serve(w, http.StatusOK)
}

// token is stateless (user + HMAC with a per-shop key) so a benchmark
// logging in thousands of times does not grow memory.
func (s *site) token(user string) string {
	u := base64.RawURLEncoding.EncodeToString([]byte(user))
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(u))
	return u + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *site) validToken(auth string) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	u, sig, ok := strings.Cut(strings.TrimSpace(tok), ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(u))
	return hmac.Equal(got, m.Sum(nil))
}

// serveStatic is static.shop-cdn.test.
func (s *site) serveStatic(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	switch r.URL.Path {
	case "/app.js":
		s.appJS.serve(w, http.StatusOK)
	case "/style.css":
		s.styleCSS.serve(w, http.StatusOK)
	case "/logo.png":
		s.logoPNG.serve(w, http.StatusOK)
	case "/healthz":
		s.healthz.serve(w, http.StatusOK)
	default:
		s.staticNotFound.serve(w, http.StatusNotFound)
	}
}
