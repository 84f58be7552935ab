import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { Locale } from 'vant'
import zhCN from 'vant/es/locale/lang/zh-CN'
import enUS from 'vant/es/locale/lang/en-US'
// Vant's base styles; each component's own come with it (imported where used).
import 'vant/es/style/base.css'
// Services called from scripts bring no styles of their own.
import 'vant/es/toast/style/index'
import App from './App.vue'
import { router } from './router'
import { makeI18n, savedLocale } from '@/shared/i18n'
import { messages } from './messages'
import './app.css'

if (savedLocale() === 'en') Locale.use('en-US', enUS)
else Locale.use('zh-CN', zhCN)

const app = createApp(App)
app.use(createPinia())
app.use(makeI18n(messages))
app.use(router)
app.mount('#app')
