// Prints the JavaScript each app's first page loads, gzipped, from Vite's manifest: the entry
// with its static imports, and with the landing page's lazy chunk. The build fails above an
// app's budget.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

// The console's budget is 500 kB, the phone app's 250 kB (a phone on a slow network).
const manifest = JSON.parse(readFileSync('dist/.vite/manifest.json', 'utf8'))

function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen
  seen.add(key)
  for (const imported of manifest[key]?.imports ?? []) closure(imported, seen)
  return seen
}

function gzippedKb(keys) {
  let bytes = 0
  for (const key of keys) {
    const file = manifest[key]?.file
    if (file?.endsWith('.js')) bytes += gzipSync(readFileSync(`dist/${file}`), { level: 9 }).length
  }
  return bytes / 1024
}

const apps = [
  { name: 'console', entry: 'admin/index.html', landing: 'src/admin/pages/DashboardPage.vue', budget: 500 },
  { name: 'phone app', entry: 'app/index.html', landing: 'app/index.html', budget: 250 },
]
let over = false
for (const app of apps) {
  const initial = closure(app.entry)
  const entryKb = gzippedKb(initial)
  const withLanding = closure(app.landing, new Set(initial))
  const landingKb = gzippedKb(withLanding)
  console.log(
    `${app.name}: initial JavaScript ${entryKb.toFixed(1)} kB gzipped; with its landing page ${landingKb.toFixed(1)} kB (budget ${app.budget} kB)`,
  )
  if (landingKb > app.budget) over = true
}
if (over) {
  console.error('over the JavaScript budget')
  process.exit(1)
}
