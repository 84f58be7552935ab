/// <reference types="vitest/config" />
// One build, several entry pages: the console (/admin/) and the phone app of customers and
// workers (/app/). `anjia serve`
// serves `dist/`: each app's page with its history-mode fallback, and the hashed files under
// /assets/ with a long cache.
import { fileURLToPath, URL } from 'node:url'
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { VantResolver } from '@vant/auto-import-resolver'

/**
 * Vant's icon font names a copy on Alibaba's CDN after its inline WOFF2: the pages load nothing
 * from outside their own origin (their CSP says so, and many networks reach no CDN), so the CDN
 * fallback is dropped and the inline font, which every supported browser reads, stays.
 */
function noIconFontCdn(): Plugin {
  return {
    name: 'anjia-no-icon-font-cdn',
    enforce: 'pre',
    transform(code, id) {
      if (!id.includes('vant') || !id.endsWith('.css')) return null
      return code.replace(/,\s*url\((["']?)(?:https?:)?\/\/at\.alicdn\.com[^)]*\)\s*format\((["']?)woff\2\)/g, '')
    },
  }
}

export default defineConfig({
  base: '/',
  plugins: [
    vue(),
    noIconFontCdn(),
    // Element Plus and Vant components and their styles are imported where they are used,
    // not whole.
    Components({
      resolvers: [ElementPlusResolver({ importStyle: 'css' }), VantResolver()],
      dts: 'components.d.ts',
    }),
  ],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    reportCompressedSize: false,
    manifest: true,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: {
        admin: fileURLToPath(new URL('./admin/index.html', import.meta.url)),
        app: fileURLToPath(new URL('./app/index.html', import.meta.url)),
      },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
  test: {
    include: ['src/**/*.test.ts'],
  },
})
