import { createApp } from 'vue'
import { createPinia } from 'pinia'
import 'element-plus/theme-chalk/base.css'
// Services called from scripts rather than templates bring no styles of their own.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import 'element-plus/es/components/loading/style/css'
import App from './App.vue'
import { router } from './router'
import { makeI18n } from '@/shared/i18n'
import { messages } from './messages'
import './console.css'

const app = createApp(App)
app.use(createPinia())
app.use(makeI18n(messages))
app.use(router)
app.mount('#app')
