// Writes a Brotli (`.br`) and a gzip (`.gz`) copy beside every compressible file of the build,
// once, at build time: `anjia serve` sends the smallest one the browser accepts, so a phone on a
// slow network downloads the JavaScript at its gzipped size without the server compressing on
// every request.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|webmanifest|map)$/
let files = 0
let raw = 0
let brotli = 0

function walk(folder) {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (COMPRESSIBLE.test(name) && statSync(path).size > 1024) compress(path)
  }
}

function compress(path) {
  const bytes = readFileSync(path)
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } })
  writeFileSync(`${path}.br`, br)
  writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }))
  files += 1
  raw += bytes.length
  brotli += br.length
}

walk('dist')
console.log(`compressed ${files} files: ${(raw / 1024).toFixed(0)} kB → ${(brotli / 1024).toFixed(0)} kB with Brotli`)
