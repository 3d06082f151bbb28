document.querySelector("h1").title = `Served at ${new Date().toLocaleString()}`;
